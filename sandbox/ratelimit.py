"""Per-installation, per-endpoint rate limits over a rolling 60 seconds of the sandbox clock.

The windows live in memory (one process serves the sandbox); overrides live on the installation.
The counts of requests let through and refused with 429 since the last reset, per endpoint, live
in memory too; `_control/rate-limits/counts/` shows them (the production smoke stage reads them).
"""

import math
import threading
from collections import Counter, defaultdict, deque

WINDOW = 60.0
DEFAULT_LIMIT = 300
LIMITS = {
    "GET /postransaction/{id}/": 300,
    "GET /postransaction/": 100,
    "POST /postransaction/": 300,
    "GET /invoice/{id}/": 250,
    "GET /invoice/": 60,
    "GET /client/{id}/": 500,
    "GET /client/": 125,
    "GET /phonenumber/": 900,
    "GET /department/": 300,
    "GET /department/{id}/": 1200,
    "GET /user/": 100,
}

_lock = threading.Lock()
# (provet_id, endpoint) -> [(timestamp, cost), ...], oldest first
_windows: dict[tuple[int, str], deque[tuple[float, int]]] = defaultdict(deque)
# provet_id -> endpoint -> requests let through / refused with 429
_allowed: dict[int, Counter[str]] = defaultdict(Counter)
_refused: dict[int, Counter[str]] = defaultdict(Counter)


def endpoint(method: str, resource: str, item: bool) -> str:
    return f"{method} /{resource}/{{id}}/" if item else f"{method} /{resource}/"


def limit_for(key: str, overrides: dict) -> int:
    return int(overrides.get(key, LIMITS.get(key, DEFAULT_LIMIT)))


def hit(provet_id: int, key: str, limit: int, cost: int, now: float) -> int | None:
    """Count a request; answer None when allowed, else the seconds until a slot frees."""
    with _lock:
        window = _windows[(provet_id, key)]
        while window and window[0][0] <= now - WINDOW:
            window.popleft()
        used = sum(c for _, c in window)
        if used + cost <= limit:
            window.append((now, cost))
            _allowed[provet_id][key] += 1
            return None
        _refused[provet_id][key] += 1
        if cost > limit:
            return math.ceil(WINDOW)
        freed = 0
        for stamp, spent in window:
            freed += spent
            if used - freed + cost <= limit:
                return max(1, math.ceil(stamp + WINDOW - now))
        return math.ceil(WINDOW)  # pragma: no cover


def counts(provet_id: int) -> dict:
    """Requests let through and refused with 429 per endpoint since the last reset."""
    with _lock:
        allowed, refused = dict(_allowed[provet_id]), dict(_refused[provet_id])
    return {
        "allowed": sum(allowed.values()),
        "refused": sum(refused.values()),
        "by_endpoint": {
            key: {"allowed": allowed.get(key, 0), "refused": refused.get(key, 0)}
            for key in sorted(allowed.keys() | refused.keys())
        },
    }


def reset(provet_id: int | None = None) -> None:
    with _lock:
        for key in list(_windows):
            if provet_id is None or key[0] == provet_id:
                del _windows[key]
        for tally in (_allowed, _refused):
            for installation in list(tally):
                if provet_id is None or installation == provet_id:
                    del tally[installation]
