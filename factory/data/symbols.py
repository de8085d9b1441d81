"""Contract specifications: tick size and tick value, for costs in ticks."""

from __future__ import annotations

from dataclasses import dataclass

from factory.errors import ConfigError


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    tick_size: float
    tick_value_usd: float


KNOWN_SYMBOLS: dict[str, SymbolSpec] = {
    s.symbol: s
    for s in (
        SymbolSpec("MES", 0.25, 1.25),
        SymbolSpec("ES", 0.25, 12.50),
        SymbolSpec("MNQ", 0.25, 0.50),
        SymbolSpec("NQ", 0.25, 5.00),
        SymbolSpec("MGC", 0.10, 1.00),
        SymbolSpec("GC", 0.10, 10.00),
        SymbolSpec("MYM", 1.0, 0.50),
        SymbolSpec("M2K", 0.10, 0.50),
        SymbolSpec("MCL", 0.01, 1.00),
        SymbolSpec("CL", 0.01, 10.00),
    )
}


def symbol_spec(
    symbol: str, tick_size: float | None = None, tick_value_usd: float | None = None
) -> SymbolSpec:
    """The spec of `symbol`; explicit values override; unknown symbols need a tick size."""
    name = symbol.strip().upper()
    if not name or not name.replace("_", "").isalnum():
        raise ConfigError(f"symbol {symbol!r} is not a plain name; fix: pass e.g. --symbol MES")
    known = KNOWN_SYMBOLS.get(name)
    if tick_size is not None and tick_size <= 0:
        raise ConfigError(f"tick size {tick_size} must be > 0; fix: pass e.g. --tick-size 0.25")
    if known is None and tick_size is None:
        raise ConfigError(
            f"unknown symbol {name!r} has no tick size; fix: pass --tick-size "
            f"(known: {', '.join(sorted(KNOWN_SYMBOLS))})"
        )
    size = tick_size if tick_size is not None else known.tick_size
    value = (
        tick_value_usd if tick_value_usd is not None else (known.tick_value_usd if known else 0.0)
    )
    return SymbolSpec(name, float(size), float(value))


def cost_warning(symbol: str, tick_value_usd: float) -> str | None:
    """A warning when an unknown symbol's costs are zero (no tick value was given)."""
    name = symbol.strip().upper()
    if name in KNOWN_SYMBOLS or tick_value_usd > 0:
        return None
    return (
        f"symbol {name!r} is unknown and has no tick value: costs in USD are zero "
        "(round trip $0.00); pass --tick-value with the USD value of one tick"
    )
