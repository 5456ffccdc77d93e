// {{name}}: a Skippr transform in JavaScript. Each JSON frame becomes one record, except
// those whose `type` is listed in the `drop_types` option; a frame that is not JSON is
// rejected and lands in the dead-letter output with the reason.

import { Transform, exportTransform } from "./skippr_sdk.js";

class {{type_name}} extends Transform {
  constructor(source, options) {
    super(source, options);
    const { drop_types = [], ...unknown } = options;
    const misspelt = Object.keys(unknown);
    if (misspelt.length > 0) throw new Error(`unknown option(s) ${misspelt}; expected \`drop_types\``);
    this.dropTypes = new Set(drop_types);
  }

  shape(frame, records) {
    const message = frame.json();
    if (this.dropTypes.has(message?.type)) return;
    records.push(message);
  }
}

export const shaper = exportTransform({{type_name}});
