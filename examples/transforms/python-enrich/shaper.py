"""Enriches trades, in Python: each `{"type":"trade"}` message gets a numeric `notional`
(price × size) and is keyed by its symbol; other messages are dropped; a trade whose
price or size is not a number is rejected with the reason. Option: `min_notional`
keeps only trades at least that large."""

from skippr_sdk import Reject, Transform, export


class Enrich(Transform):
    def __init__(self, source, options):
        super().__init__(source, options)
        unknown = set(options) - {"min_notional"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; expected `min_notional`")
        self.min_notional = options.get("min_notional", 0)
        if not isinstance(self.min_notional, (int, float)):
            raise ValueError(f"`min_notional` must be a number, not {self.min_notional!r}")

    def shape(self, frame, records):
        message = frame.json()
        if not isinstance(message, dict) or message.get("type") != "trade":
            return
        try:
            notional = float(message["price"]) * float(message["size"])
        except (KeyError, TypeError, ValueError) as err:
            raise Reject(f"trade without a numeric price and size: {err}") from None
        if notional >= self.min_notional:
            records.push({**message, "notional": round(notional, 8)}, key=message.get("symbol"))


Shaper = export(Enrich)
