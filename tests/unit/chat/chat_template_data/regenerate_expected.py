#!/usr/bin/env python3
"""Writes <template>.<conversation>.expected (or .error) for cases.json by rendering
each template with Python's jinja2 set up as transformers' apply_chat_template does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, a tojson
without HTML escaping, raise_exception). Needs python3-jinja2 (Debian package).
Review the diff of the outputs by eye before committing them."""
import json
import os

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def normalize(message, object_arguments=False):
    m = dict(message)
    if object_arguments and m.get("tool_calls"):  # as llama.cpp (and the server) pass them to
        # templates that write `arguments | tojson`: the JSON text parsed into an object
        m["tool_calls"] = [dict(c, function=dict(c["function"], arguments=json.loads(c["function"]["arguments"])))
                           if isinstance(c["function"].get("arguments"), str) else c for c in m["tool_calls"]]
    if isinstance(m.get("content"), list):  # OpenAI content parts, joined as the server does
        m["content"] = "".join(p["text"] for p in m["content"] if p.get("type") == "text")
    return m



def environment(mutable_lists):
    # Kimi-K2's templates append to lists, which transformers' immutable sandbox refuses and
    # llama.cpp's engine (and ours) allow: "mutable_lists" renders those with the mutable one.
    env = (SandboxedEnvironment if mutable_lists else ImmutableSandboxedEnvironment)(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


cases = json.load(open(os.path.join(HERE, "cases.json")))
for name, spec in cases["templates"].items():
    template = environment(spec.get("mutable_lists", False)).from_string(open(os.path.join(HERE, name + ".jinja")).read())
    for conv_name in spec["conversations"]:
        conv = cases["conversations"][conv_name]
        context = dict(spec.get("extra", {}))
        context.update({k: v for k, v in conv.items() if k != "messages"})
        context["messages"] = [normalize(m, spec.get("object_arguments", False)) for m in conv["messages"]]
        context.setdefault("add_generation_prompt", True)
        context["bos_token"] = spec["bos_token"]
        context["eos_token"] = spec["eos_token"]
        base = os.path.join(HERE, f"{name}.{conv_name}")
        for stale in (base + ".expected", base + ".error"):
            if os.path.exists(stale):
                os.remove(stale)
        try:
            out, suffix = template.render(**context), ".expected"
        except TemplateError as e:
            out, suffix = str(e), ".error"
        with open(base + suffix, "w") as f:
            f.write(out)
