"""Measure the cost of validation per event.

Run ``python -m event_aggregator.validation.bench``.

It prints microseconds per event for a typical 1 KiB v1.0 event, a 100 KiB
one (JSON ``data``), a 100 KiB one with ``data_base64``, and a v0.3 event,
with the share of the schema engine and of JSON parsing, and the cost of the
``cloudevents`` SDK's own reading of the same payload for comparison. Run it
on an idle machine; figures vary by a few percent between runs.
"""

import argparse
import base64
import json
import timeit
from collections.abc import Callable
from functools import partial

from event_aggregator.validation import EventValidator, ValidEvent, jsontext
from event_aggregator.validation.schema import SchemaCheck, envelope_view, load_schema


def _envelope(**extra: object) -> dict[str, object]:
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": "4c7d3a1e-9b1f-4f5e-8a55-0e3c1f2b7d90",
        "source": "https://edge-a.example.com/plants/7/lines/3",
        "type": "com.example.workflow.step.completed.v1",
        "time": "2024-05-17T09:41:27.318Z",
        "subject": "orders/81342/steps/pack",
        "datacontenttype": "application/json",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "attempt": 1,
    }
    event.update(extra)
    return event


def _items(size: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    while len(json.dumps(items)) < size:
        n = len(items)
        items.append(
            {"sku": f"SKU-{n:06d}", "qty": n % 7 + 1, "price": 12.5, "ok": True}
        )
    return items


def sample_events() -> dict[str, bytes]:
    """Return the benchmark payloads by name."""
    typical = _envelope(
        data={"order": 81342, "step": "pack", "operator": "u-1187", "items": []}
    )
    data = typical["data"]
    assert isinstance(data, dict)
    payload = b""
    while len(payload) < 1000:
        data["items"].append({"sku": f"SKU-{len(data['items']):06d}", "qty": 2})
        payload = json.dumps(typical).encode()
    large = json.dumps(_envelope(data={"items": _items(100 * 1024)})).encode()
    binary = _envelope(datacontenttype="application/octet-stream")
    binary["data_base64"] = base64.b64encode(bytes(range(256)) * 300).decode()
    legacy = _envelope(specversion="0.3", comexample={"region": "eu", "shard": 3})
    legacy["data"] = typical["data"]
    return {
        "typical 1 KiB v1.0": payload,
        "100 KiB v1.0, JSON data": large,
        "100 KiB v1.0, data_base64": json.dumps(binary).encode(),
        "1 KiB v0.3, Map extension": json.dumps(legacy).encode(),
    }


def _per_call(func: Callable[[], object], seconds: float) -> float:
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    repeats = max(3, int(seconds / max(timer.timeit(number), 1e-9)))
    best = min(timer.repeat(repeat=min(repeats, 15), number=number))
    return best / number * 1e6


def _sdk_reader() -> Callable[[bytes], object] | None:
    try:
        from cloudevents.core.formats.json import JSONFormat
    except ImportError:
        return None
    json_format = JSONFormat()
    return lambda payload: json_format.read(None, payload)


def main(argv: list[str] | None = None) -> None:
    """Print the figures; ``--seconds`` bounds the time spent per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    validator = EventValidator()
    schemas = {v: SchemaCheck(load_schema(v)) for v in ("1.0", "0.3")}
    sdk_read = _sdk_reader()
    print(
        f"{'event':28} {'bytes':>7} {'total':>9} {'parse':>9} {'schema':>9} {'sdk':>9}"
    )
    for name, payload in sample_events().items():
        verdict = validator.validate(payload)
        assert isinstance(verdict, ValidEvent), verdict
        text = payload.decode()
        event = jsontext.parse(text, payload)
        assert isinstance(event, dict)
        schema = schemas[verdict.specversion]
        seconds = args.seconds
        total = _per_call(partial(validator.validate, payload), seconds)
        parse = _per_call(partial(jsontext.parse, text, payload), seconds)
        view = envelope_view(event)
        check = _per_call(partial(schema.first_violation, view), seconds)
        sdk = "n/a"
        if sdk_read is not None:
            sdk = f"{_per_call(partial(sdk_read, payload), seconds):.1f}"
        figures = f"{total:9.1f} {parse:9.1f} {check:9.1f} {sdk:>9}"
        print(f"{name:28} {len(payload):7d} {figures}")
    print("microseconds per event (best of repeats); schema = the jsonschema")
    print("seam on the envelope view, parse = text to objects, sdk = cloudevents")
    print("JSONFormat().read of the same payload, for comparison (not used).")


if __name__ == "__main__":
    main()
