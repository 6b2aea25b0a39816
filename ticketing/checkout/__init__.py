"""Orders, holds with expiry, atomic inventory, and the order page."""
