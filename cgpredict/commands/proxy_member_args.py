"""Shared ``--proxy`` / ``--zero-cost`` options of ``cgpredict rank`` and ``cgpredict finetune``.

Pipeline position: CLI → **optional Proxy ensemble member** → predictor → ranking.

``--proxy gennas`` (or ``eproxy``, or a JSON dict of :class:`cgpredict.proxies.ProxyConfig`
fields) and ``--zero-cost synflow [naswot]`` add the ``Proxy`` member to a GENNAPE predictor
(:meth:`cgpredict.Predictor.add_proxy_member`) to the loaded predictor: training-free scores of
each net, ridge-re-weighted at fine-tuning. ``--proxy cpu`` is the CPU-sized GenNAS-combo
(20 steps, batch 4) that the benchmarks in ``benchmarks/results`` use.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

#: The CPU-sized GenNAS configuration of the benchmarks (``--proxy cpu``).
CPU_GENNAS: dict[str, Any] = {"method": "gennas", "preset": "combo", "iterations": 20, "batch_size": 4}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--proxy`` and ``--zero-cost``."""
    parser.add_argument("--proxy", default=None, metavar="NAME|JSON",
                        help="GENNAPE only: add the Proxy ensemble member with this regression proxy: gennas, eproxy, cpu "
                             "(GenNAS-combo, 20 steps, batch 4) or a JSON dict of ProxyConfig fields")
    parser.add_argument("--zero-cost", nargs="+", default=None, choices=["synflow", "naswot"],
                        help="GENNAPE only: zero-cost proxies of the Proxy member (default with --proxy: synflow)")


def proxy_option(text: str | None) -> str | dict[str, Any] | None:
    """``--proxy`` text → what :meth:`Predictor.add_proxy_member` takes."""
    if text is None:
        return None
    text = text.strip()
    if text == "cpu":
        return dict(CPU_GENNAS)
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--proxy is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError("--proxy JSON must be an object of ProxyConfig fields")
        _check_proxy_fields(value)
        return value
    if text not in ("gennas", "eproxy"):
        raise ValueError(f"--proxy must be gennas, eproxy, cpu or a JSON object, got {text!r}")
    return text


def _check_proxy_fields(value: dict[str, Any]) -> None:
    """Refuse unknown or ill-typed ProxyConfig fields in ``--proxy`` JSON before any work."""
    import dataclasses

    from cgpredict.errors import UsageError
    from cgpredict.proxies.features import ProxyConfig

    known = {f.name: f for f in dataclasses.fields(ProxyConfig)}
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise UsageError(f"--proxy: unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"ProxyConfig fields are {', '.join(known)}")
    for name, item in value.items():
        default = known[name].default
        if name == "overrides":
            pairs = item.items() if isinstance(item, dict) else item
            ok = isinstance(item, (list, dict)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs)
        elif item is None:
            ok = default is None  # preset, iterations: None = the method's default
        elif name in ("preset", "iterations"):
            ok = isinstance(item, str) if name == "preset" else (isinstance(item, int) and not isinstance(item, bool))
        else:
            ok = isinstance(item, type(default)) and not (isinstance(item, bool) and not isinstance(default, bool))
        if not ok:
            raise UsageError(f"--proxy: field {name!r} has the value {item!r:.60}, of the wrong type")
    try:
        ProxyConfig(**{k: v for k, v in value.items() if k != "overrides"})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--proxy: {exc}") from None


def apply(predictor: Any, args: argparse.Namespace) -> None:
    """Add the Proxy member when ``--proxy`` or ``--zero-cost`` was given."""
    proxy = proxy_option(args.proxy)
    if proxy is None and not args.zero_cost:
        return
    zero_cost = tuple(args.zero_cost) if args.zero_cost else ("synflow",)
    predictor.add_proxy_member(proxy=proxy, zero_cost=zero_cost)
