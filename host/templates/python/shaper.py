"""{{name}}: a Skippr transform in Python. Each JSON frame becomes one record, except those
whose `type` is listed in the `drop_types` option; a frame that is not JSON is rejected
and lands in the dead-letter output with the reason."""

from skippr_sdk import Transform, export


class {{type_name}}(Transform):
    def __init__(self, source, options):
        super().__init__(source, options)
        unknown = set(options) - {"drop_types"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; expected `drop_types`")
        self.drop_types = set(options.get("drop_types", []))

    def shape(self, frame, records):
        message = frame.json()
        if isinstance(message, dict) and message.get("type") in self.drop_types:
            return
        records.push(message)


Shaper = export({{type_name}})
