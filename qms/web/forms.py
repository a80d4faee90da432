"""Web forms. Every POST form carries a CSRF token (CSRFProtect checks it before any view
runs); the audit-trail filter is a GET form and so has none."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import (DataRequired, EqualTo, Length, NumberRange, Optional,
                                ValidationError)

REQUIRED = _l("This field is required.")


def positive(_form, field) -> None:
    # skipped when the text was not a number at all: that error is already on the field
    if field.data is not None and field.data < 1:
        raise ValidationError(_l("Must be 1 or more."))


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(REQUIRED), Length(max=150)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(REQUIRED), Length(max=1024)],
        render_kw={"autocomplete": "current-password", "autofocus": True})
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(REQUIRED), Length(max=1024)],
        render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(REQUIRED),
                    EqualTo("new_password", message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"})


class LanguageForm(FlaskForm):
    locale = HiddenField(validators=[DataRequired()])
    next = HiddenField()


class AuditFilterForm(FlaskForm):
    """Filters of the audit-trail page, read from the query string."""

    class Meta:
        csrf = False  # a GET search changes nothing, and its URL must be shareable

    seq_from = IntegerField(_l("Seq from"), validators=[Optional(), positive])
    seq_to = IntegerField(_l("Seq to"), validators=[Optional(), positive])
    entity_type = StringField(_l("Entity type"), validators=[Optional(), Length(max=64)])
    entity_id = StringField(_l("Entity ID"), validators=[Optional(), Length(max=100)])
    actor = StringField(_l("Actor"), validators=[Optional(), Length(max=150)])
    action = StringField(_l("Action"), validators=[Optional(), Length(max=100)],
                         description=_l("A tag, or its beginning: identity.login"))
    at_from = DateField(_l("From date (UTC)"), validators=[Optional()])
    at_to = DateField(_l("To date (UTC)"), validators=[Optional()])
    page = IntegerField(validators=[Optional(), NumberRange(min=1)], default=1)
