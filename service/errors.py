"""One error tree with stable codes; ``http/errors.py`` answers it over HTTP in one place."""

from __future__ import annotations

import msgspec


class Problem(msgspec.Struct, frozen=True):
    """One located problem: a field path over HTTP, or file:line:column on disk."""

    reason: str
    path: str = ""
    file: str = ""
    line: int = 0
    column: int = 0
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}: " if self.file else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{self.severity}: {field}{self.reason}"


class OpsgateError(Exception):
    """Base of every error opsgate raises on purpose."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def headers(self) -> dict[str, str]:
        """Response headers this error adds (e.g. ``WWW-Authenticate``, ``Retry-After``)."""
        return {}


class BadRequest(OpsgateError):
    code = "malformed_request"
    status = 400


class Unauthorized(OpsgateError):
    """No API key, or one opsgate does not know."""

    code = "unauthorized"
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="opsgate"'}


class LoginRequired(Unauthorized):
    """A reviewer page without a session: the pages answer it with a redirect to the login form."""

    code = "login_required"


class Forbidden(OpsgateError):
    """A known API key without any of the roles the route needs."""

    code = "forbidden"
    status = 403


class CsrfFailed(Forbidden):
    """A reviewer form posted with the session cookie but without that session's CSRF token."""

    code = "csrf_failed"


class InvalidFacts(OpsgateError):
    code = "invalid_facts"
    status = 422


class InvalidBody(OpsgateError):
    """A well-formed request whose fields are wrong (other than a decision's facts)."""

    code = "invalid_request"
    status = 422


class UnknownRuleset(OpsgateError):
    code = "unknown_ruleset"
    status = 404


class NotFound(OpsgateError):
    """A decision, version or other record that does not exist."""

    code = "not_found"
    status = 404


class Conflict(OpsgateError):
    code = "conflict"
    status = 409


class AlreadyDecided(Conflict):
    """An approval of a pending decision that was already executed, rejected or expired."""

    code = "already_decided"


class ApprovalExpired(Conflict):
    """An approval of a pending decision past its expiry (it is escalated instead)."""

    code = "expired"


class NotPending(Conflict):
    """An approval of a decision that never waited for one."""

    code = "not_pending"


class NotCovered(Conflict):
    """A proof asked for a decision that no signed checkpoint covers (yet, or checkpoints are off)."""

    code = "not_covered"


class SeparationOfDuties(OpsgateError):
    """The approver is the caller that asked for the decision."""

    code = "separation_of_duties"
    status = 403


class OutcomeNotAllowed(Conflict):
    """An outcome for a decision whose actions were never approved (pending, rejected, expired, escalated)."""

    code = "outcome_not_allowed"


class OutcomeForbidden(OpsgateError):
    """An outcome reported by a caller other than the one that asked for the decision (nor approve, nor admin)."""

    code = "outcome_forbidden"
    status = 403


class UnsupportedMediaType(OpsgateError):
    """A POST to a JSON endpoint without ``Content-Type: application/json`` (a cross-site form could send it)."""

    code = "unsupported_media_type"
    status = 415


class ShadowNotConfigured(OpsgateError):
    """GET /admin/shadow on a server started without a shadow candidate."""

    code = "shadow_not_configured"
    status = 404


class PayloadTooLarge(OpsgateError):
    code = "payload_too_large"
    status = 413


class TooDeep(OpsgateError):
    """A JSON body nested deeper than the configured limit (OPSGATE_MAX_JSON_DEPTH)."""

    code = "json_too_deep"
    status = 422


class RateLimited(OpsgateError):
    """The caller used up its rate (OPSGATE_RATE_LIMIT); ``retry_after`` is in whole seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RequestTimeout(OpsgateError):
    """A request ran longer than OPSGATE_REQUEST_TIMEOUT_S."""

    code = "request_timeout"
    status = 503


class HeaderTimeout(OpsgateError):
    """A request whose headers did not arrive within OPSGATE_HEADER_TIMEOUT_S; the connection is closed."""

    code = "header_timeout"
    status = 408


class HeadersTooLarge(OpsgateError):
    """A request line and headers over OPSGATE_MAX_HEADER_BYTES; the connection is closed."""

    code = "headers_too_large"
    status = 431


class TooManyConnections(OpsgateError):
    """A connection over OPSGATE_MAX_CONNECTIONS: answered at once and closed, so it holds no descriptor."""

    code = "too_many_connections"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class Overloaded(OpsgateError):
    """This process already has its bound of decisions in flight (OPSGATE_MAX_IN_FLIGHT): the request
    is refused before any work, so load never turns into escalations.  Retry after one second."""

    code = "overloaded"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class RulesetInvalid(OpsgateError):
    """A ruleset or policy file is broken; ``problems`` carry file:line:column."""

    code = "ruleset_invalid"
    status = 422


class EngineError(OpsgateError):
    """The rule engine failed or lost a result: never answered as a decision."""

    code = "engine_error"


class GuardrailsUnavailable(OpsgateError):
    """OPA could not give a verdict (down, slow or erroring)."""

    code = "guardrails_unavailable"
    status = 503


class OpaNotFound(OpsgateError):
    code = "opa_not_found"


class OpaStartFailed(OpsgateError):
    """The opa child exited at start or did not become healthy in time."""

    code = "opa_start_failed"


class OpaHttpError(OpsgateError):
    """OPA could not be reached, or answered with something other than a well-formed 200.

    The guardrails client turns it into an unavailable verdict (the decision fails closed)."""

    code = "opa_http_error"
    status = 503


class InvalidSettings(OpsgateError):
    """A configuration opsgate cannot start with (an ``OPSGATE_*`` variable, a flag, the session secret)."""

    code = "invalid_settings"


class RedactionKeyMissing(InvalidSettings):
    """A ruleset declares ``redact:`` fields but no usable redaction key is configured."""

    code = "redaction_key_missing"


class InvalidApiKeys(InvalidSettings):
    """A malformed, duplicated or empty API key configuration (file, variable, or ``opsgate keys new``)."""

    code = "invalid_api_keys"


class UnsupportedDecisionLog(InvalidSettings):
    """A decision log address that is neither a SQLite path nor a postgresql:// URL."""

    code = "unsupported_decision_log"


class UsageError(OpsgateError):
    """Command-line options that do not go together."""

    code = "usage_error"


class NotCapturable(OpsgateError):
    """A logged decision that cannot become a test case (no verdict, or its ruleset is gone)."""

    code = "not_capturable"


class InvalidCandidate(OpsgateError):
    """A candidate version directory without its rules/ or rego/ directory."""

    code = "invalid_candidate"


class CandidateDoesNotLog(OpsgateError):
    """Something tried to write to the decision log through a candidate version: a bug, never a request's fault."""

    code = "candidate_does_not_log"


class DecisionLogError(OpsgateError):
    code = "decision_log_error"
    status = 503


class ExpressionError(OpsgateError):
    """A parse or evaluation error at ``offset`` within one expression's text.

    The ruleset loader turns it into a located Problem (file:line:column); a rule's output
    that fails for some facts becomes a RuleOutputError (the decision escalates).
    """

    code = "expression_error"
    status = 422

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} (at offset {offset})")
        self.reason = reason
        self.offset = offset


class ContextUnavailable(OpsgateError):
    """A context provider did not answer usable data (down, too slow, not JSON); the decision that
    needed it fails closed (service/usecases/context.py), so this never reaches a caller."""

    code = "context_unavailable"
    status = 503
