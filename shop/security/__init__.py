"""Browser-facing security helpers of the HTTP edge (CSP per path, secure settings checks)."""
