"""Domain errors. Each maps to one HTTP status and a problem+json ``type`` (DESIGN.md
"Public REST API"); services raise them, the API and web layers render them."""
from __future__ import annotations


# members of every problem+json answer, which an error's extra members may not replace
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "errors", "code"})


class DomainError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None,
                 errors: dict[str, list[str]] | None = None, extra: dict | None = None):
        super().__init__(detail)
        clashing = RESERVED_MEMBERS & set(extra or {})
        if clashing:  # they would overwrite the problem's own members (RFC 9457)
            raise ValueError(f"extra members {sorted(clashing)} are reserved")
        self.detail = detail
        self.errors = errors or ({field: [detail]} if field else None)
        self.extra = extra or {}
        self.headers: dict[str, str] = {}  # HTTP headers the answer carries (Retry-After)
        # set by keeping_writes: the endpoint commits what the request wrote, then answers
        self.commit_before_raise = False


class AuthenticationFailed(DomainError):
    status, code, title = 401, "authentication-failed", "Not authenticated"


class AccountLocked(DomainError):
    status, code, title = 423, "account-locked", "Account locked"


class PasswordChangeRequired(DomainError):
    status, code, title = 403, "password-change-required", "Password change required"


class NotPermitted(DomainError):
    status, code, title = 403, "not-permitted", "Not permitted"


class SignatureRefused(DomainError):
    status, code, title = 403, "signature-refused", "Signature refused"


class SegregationOfDuties(DomainError):
    status, code, title = 403, "segregation-of-duties", "Segregation of duties"


class NotFound(DomainError):
    status, code, title = 404, "not-found", "Not found"


class InvalidTransition(DomainError):
    status, code, title = 409, "invalid-transition", "Invalid transition"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(DomainError):
    status, code, title = 422, "invalid-input", "Invalid input"


class TooManyAttempts(DomainError):
    """Rate limit on failed credential checks; ``retry_after`` seconds go into the
    Retry-After header."""
    status, code, title = 429, "too-many-attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)


class AuditKeyMissing(DomainError):
    """The audit checkpoint signing key file is gone: nothing is signed or verified until
    it is restored (a new key is made only by `qms audit rotate-key`)."""
    status, code, title = 503, "audit-key-missing", "Audit signing key missing"


def keeping_writes(error: DomainError) -> DomainError:
    """Mark ``error`` as a refusal whose writes outlive it: the audit events and failure
    counts of a refused signature or a failed credential check (Part 11 §11.300(d)). The
    endpoint (qms.context.request_transaction) commits them, then answers with the error;
    any other error rolls the request back. Returns ``error``, to be raised."""
    error.commit_before_raise = True
    return error


def must_commit_before_raise(error: BaseException) -> bool:
    """True for a refusal whose writes are kept (``keeping_writes``)."""
    return bool(getattr(error, "commit_before_raise", False))

