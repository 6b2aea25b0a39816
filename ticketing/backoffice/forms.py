"""The back office's forms (``ticketing.webforms``: the API's rules, every problem at once).

Passwords are never stripped or trimmed: what was typed is what is hashed.
"""

from __future__ import annotations

from flask_babel import lazy_gettext
from wtforms import BooleanField, PasswordField, StringField

from ticketing.schema import Email, Text
from ticketing.webforms import PageForm, required, rule


class LoginForm(PageForm):
    email = StringField(validators=[rule(Email(required=True))])
    password = PasswordField(validators=[required(lazy_gettext("Type your password."))])


class CodeForm(PageForm):
    code = StringField(validators=[required(lazy_gettext("Type the 6-digit code from your app."))])


class SetPasswordForm(PageForm):
    display_name = StringField(validators=[rule(Text(max_length=100))])
    password = PasswordField()
    password_again = PasswordField()


class InviteForm(PageForm):
    email = StringField(validators=[rule(Email(required=True))])
    role = StringField()


class RoleForm(PageForm):
    role = StringField()


class SettingsForm(PageForm):
    name = StringField()
    contact_email = StringField()
    legal_name = StringField()
    postal_address = StringField()
    support_text = StringField()


class SecurityForm(PageForm):
    require_staff_totp = BooleanField()


class TokenForm(PageForm):
    label = StringField()


class PasswordChangeForm(PageForm):
    current_password = PasswordField()
    password = PasswordField()
    password_again = PasswordField()


class DisplayNameForm(PageForm):
    display_name = StringField(validators=[rule(Text(max_length=100))])
