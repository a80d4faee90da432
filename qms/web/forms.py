"""Web forms. Every POST form carries a CSRF token (CSRFProtect checks it before any view
runs); the audit-trail filter is a GET form and so has none. Every form derives from
CheckedForm, so that no field passes on text the database or the audit trail cannot hold."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import (DataRequired, EqualTo, Length, NumberRange, Optional,
                                ValidationError)

from audit.canonical import MAX_SAFE_INT
from qms.api.spec import UNFIT_TEXT

REQUIRED = _l("This field is required.")
INVALID = _l("The input is not valid.")


class CheckedForm(FlaskForm):
    """Every field refuses input that is not storable text: a value that is not a string
    (Flask-WTF also reads JSON bodies), a lone surrogate, or a control character other than
    tab, line feed and carriage return (the API's rule, qms.api.spec.UNFIT_TEXT)."""

    def validate(self, extra_validators=None) -> bool:
        unfit = [field for field in self if not storable(field.raw_data)]
        for field in unfit:
            mask(field)  # before the field's validators: Length() fails on a non-string
        valid = super().validate(extra_validators)
        for field in unfit:
            field.errors.append(INVALID)
        return valid and not unfit


def storable(values: list | None) -> bool:
    return all(isinstance(value, str) and not UNFIT_TEXT.search(value) for value in values or ())


def mask(field) -> None:
    """Replace each unfit character by U+FFFD: the form shows the input back, and a lone
    surrogate cannot even be encoded into the page."""
    field.raw_data = [UNFIT_TEXT.sub("\ufffd", value) if isinstance(value, str) else ""
                      for value in field.raw_data]
    if isinstance(field, StringField):  # also PasswordField and HiddenField
        field.data = field.raw_data[0] if field.raw_data else ""


def positive(_form, field) -> None:
    # skipped when the text was not a number at all: that error is already on the field
    if field.data is not None and field.data < 1:
        raise ValidationError(_l("Must be 1 or more."))


def safe_number(form, field) -> None:
    """At most 2**53 - 1, as in the API: far larger numbers overflow the database's
    64-bit integers. Skipped, like positive(), when the text was not a number."""
    if field.data is not None:
        NumberRange(max=MAX_SAFE_INT)(form, field)


class LoginForm(CheckedForm):
    username = StringField(_l("Username"), validators=[DataRequired(REQUIRED), Length(max=150)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class ChangePasswordForm(CheckedForm):
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


class LanguageForm(CheckedForm):
    locale = HiddenField(validators=[DataRequired()])
    next = HiddenField()


class AuditFilterForm(CheckedForm):
    """Filters of the audit-trail page, read from the query string."""

    class Meta:
        csrf = False  # a GET search changes nothing, and its URL must be shareable

    seq_from = IntegerField(_l("Seq from"), validators=[Optional(), positive, safe_number])
    seq_to = IntegerField(_l("Seq to"), validators=[Optional(), positive, safe_number])
    entity_type = StringField(_l("Entity type"), validators=[Optional(), Length(max=64)])
    entity_id = StringField(_l("Entity ID"), validators=[Optional(), Length(max=100)])
    actor = StringField(_l("Actor"), validators=[Optional(), Length(max=150)])
    action = StringField(_l("Action"), validators=[Optional(), Length(max=100)],
                         description=_l("A tag, or its beginning: identity.login"))
    at_from = DateField(_l("From date (UTC)"), validators=[Optional()])
    at_to = DateField(_l("To date (UTC)"), validators=[Optional()])
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_SAFE_INT)], default=1)


class VerifyChainForm(CheckedForm):
    """The audit page's "Verify now" button: the CSRF token only."""
