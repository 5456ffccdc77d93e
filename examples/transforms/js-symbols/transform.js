// Keeps the trades of chosen symbols, in JavaScript: each `{"type":"trade"}` message whose
// `symbol` is in the `symbols` option becomes a record keyed by the symbol, with `price`
// and `size` as numbers; other messages are dropped; a frame that is not JSON is rejected.

import { Reject, Transform, exportTransform } from "../../../sdk/js/skippr_sdk.js";

class Symbols extends Transform {
  constructor(source, options) {
    super(source, options);
    const { symbols, ...unknown } = options;
    if (Object.keys(unknown).length > 0) throw new Error(`unknown option(s) ${Object.keys(unknown)}; expected \`symbols\``);
    if (!Array.isArray(symbols) || symbols.length === 0) throw new Error("`symbols` must be a list of symbols to keep");
    this.symbols = new Set(symbols);
  }

  shape(frame, records) {
    const message = frame.json();
    if (message?.type !== "trade" || !this.symbols.has(message.symbol)) return;
    const price = Number(message.price);
    const size = Number(message.size);
    if (!Number.isFinite(price) || !Number.isFinite(size)) throw new Reject(`trade without a numeric price and size`);
    records.push({ ...message, price, size }, message.symbol);
  }
}

export const shaper = exportTransform(Symbols);
