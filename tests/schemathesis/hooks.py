"""Schemathesis hooks for tests/schemathesis/run.py (loaded through SCHEMATHESIS_HOOKS)."""
import schemathesis
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

# The only 400s the contract gives to schema-valid requests: answers about stored state.
STATE_REJECTIONS = {
    ("POST", "/register"): "Email already registered.",
    ("POST", "/change-password"): "Old password is incorrect",
}


@schemathesis.check
def contract_rejections(ctx, response, case):
    """A schema-valid request to /register or /change-password may get 400 only for a
    reason the schema cannot express (state), never for failing an input rule."""
    expected = STATE_REJECTIONS.get((case.operation.method.upper(), case.operation.path))
    meta = case.meta
    if expected is None or response.status_code != 400 or meta is None or not meta.generation.mode.is_positive:
        return None
    if is_unexpected_http_status_case(case):  # a request-shape probe, as the built-in checks skip
        return None
    try:
        error = response.json().get("error")
    except Exception:  # noqa: BLE001 - a non-JSON 400 is itself the failure
        error = None
    if error != expected:
        raise AssertionError(f"schema-valid request rejected with 400 {response.text!r}; "
                             f"the only 400 allowed here is {expected!r}")
    return None


def _tolerate_ast_system_error() -> None:
    """Hypothesis describes filter lambdas by parsing their module's source with `ast`.
    On the pyenv CPython 3.11.7 that ./dev's venv uses, that parse can raise
    `SystemError: AST constructor recursion depth mismatch` deep inside a generation
    call stack, which schemathesis then reports as a runtime error of the operation.
    A description is only cosmetic, so fall back to Hypothesis' own "unknown" text."""
    from hypothesis.internal import lambda_sources

    describe = lambda_sources._lambda_description

    def safe(f, *args, **kwargs):
        try:
            return describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = safe


_tolerate_ast_system_error()
