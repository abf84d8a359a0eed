"""One helper for the components' parameter checks."""

__all__ = ["refused"]


def refused(component, error: Exception) -> Exception:
    """``error``, for a constructor to raise: ``component`` is refused and never built, so
    Amaranth must not warn that it was never elaborated (its ``MustUse`` check)."""
    component._MustUse__silence = True
    return error
