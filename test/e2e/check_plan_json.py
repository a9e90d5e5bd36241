"""Checks `ttt-run --dump --json` against the model file it was compiled from: every parameter
of the .mlir (per layer) appears with its shape, and the counts add up."""
import json
import re
import sys

plan = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
layers = int(re.search(r"layers = (\d+)", text).group(1))


def walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


params = {n["name"]: n for n in walk(plan) if isinstance(n, dict) and "hf_name" in n and "shape" in n}
declared = re.findall(r'ttt\.param "([^"]+)".*: tensor<([0-9x]+)xf32>', text)
body = text[text.index("ttt.repeat"):text.index("ttt.yield")]
expected = {}
for name, shape in declared:
    dims = [int(d) for d in shape.split("x")]
    if f'"{name}"' in body:
        for i in range(layers):
            expected[f"layers.{i}.{name}"] = dims
    else:
        expected[name] = dims
assert set(params) == set(expected), sorted(set(params) ^ set(expected))
for name, dims in expected.items():
    assert params[name]["shape"] == dims, (name, params[name]["shape"], dims)
total = sum(eval("*".join(map(str, d))) for d in expected.values())
assert str(total) in json.dumps(plan) or f"{total:,}" in json.dumps(plan), total
print(f"ok: {len(params)} parameters, {total} scalars")
