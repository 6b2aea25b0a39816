"""What every page a buyer sees must pass: axe-core's checks and the width of the screen.

axe-core is vendored in ``static/vendor/axe-core`` (from npm, MPL-2.0). It is evaluated in
the page through the DevTools protocol, which the pages' Content-Security-Policy allows
(a ``<script>`` tag it would refuse), so the pages are audited exactly as they are served.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
# axe's "impact" levels a page may not have at all.
FORBIDDEN_IMPACTS = ("critical", "serious")


@cache
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, with their impact and a few nodes."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
            }));
        }"""
    )


def assert_accessible(page: Any, name: str) -> None:
    """No critical or serious axe violation (minor and moderate ones are reported by axe too,
    but the bar of issue 18 is these two)."""
    bad = [v for v in axe_violations(page) if v["impact"] in FORBIDDEN_IMPACTS]
    assert not bad, f"{name}: axe finds {bad}"


def assert_fits_width(page: Any, name: str = "") -> None:
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= inner_width, f"{name or page.url} scrolls sideways: {scroll_width}px > {inner_width}px"
