"""Write the intersphinx inventories of Python, PyTorch and Pyro that the docs link into.

The docs build offline (CI reaches package registries only), so the inventories of the three
sites are not fetched: ``_inventories/*.inv`` list the objects our docstrings name, each with
its address on the real site, in Sphinx's inventory format. Run ``python docs/inventories.py``
after adding a name here.
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent / "_inventories"

# (project, version, {name: (role, address relative to the site's root)})
PYTHON_EXCEPTIONS = [
    "ValueError",
    "TypeError",
    "RuntimeError",
    "FloatingPointError",
    "OSError",
    "ModuleNotFoundError",
    "FileNotFoundError",
    "SystemExit",
    "KeyboardInterrupt",
    "UserWarning",
    "Warning",
]
INVENTORIES: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "python": (
        "Python",
        "3",
        {
            **{name: ("py:exception", "library/exceptions.html#$") for name in PYTHON_EXCEPTIONS},
            **{
                name: ("py:class", "library/functions.html#$")
                for name in ("int", "float", "bool", "str")
            },
            **{name: ("py:class", "library/stdtypes.html#$") for name in ("tuple", "list", "dict")},
            "pathlib.Path": ("py:class", "library/pathlib.html#$"),
            "argparse.ArgumentParser": ("py:class", "library/argparse.html#$"),
            "argparse.Namespace": ("py:class", "library/argparse.html#$"),
            "warnings.warn": ("py:function", "library/warnings.html#$"),
            "typing.Protocol": ("py:class", "library/typing.html#$"),
            "typing.NamedTuple": ("py:class", "library/typing.html#$"),
            "collections.abc.Sequence": ("py:class", "library/collections.abc.html#$"),
            "collections.abc.Mapping": ("py:class", "library/collections.abc.html#$"),
            "collections.abc.Iterable": ("py:class", "library/collections.abc.html#$"),
            "collections.abc.Iterator": ("py:class", "library/collections.abc.html#$"),
            "collections.abc.Callable": ("py:class", "library/collections.abc.html#$"),
        },
    ),
    "torch": (
        "PyTorch",
        "stable",
        {
            "torch.Tensor": ("py:class", "tensors.html#$"),
            "torch.device": ("py:class", "tensor_attributes.html#$"),
            "torch.dtype": ("py:class", "tensor_attributes.html#$"),
            "torch.Generator": ("py:class", "generated/torch.Generator.html#$"),
            "torch.compile": ("py:function", "generated/torch.compile.html#$"),
            "torch.nn.Module": ("py:class", "generated/torch.nn.Module.html#$"),
            "torch.nn.Sequential": ("py:class", "generated/torch.nn.Sequential.html#$"),
            "torch.nn.Linear": ("py:class", "generated/torch.nn.Linear.html#$"),
            "torch.nn.Conv2d": ("py:class", "generated/torch.nn.Conv2d.html#$"),
            "torch.nn.CrossEntropyLoss": ("py:class", "generated/torch.nn.CrossEntropyLoss.html#$"),
            "torch.nn.NLLLoss": ("py:class", "generated/torch.nn.NLLLoss.html#$"),
            "torch.nn.functional.cross_entropy": (
                "py:function",
                "generated/torch.nn.functional.cross_entropy.html#$",
            ),
            "torch.optim.Adam": ("py:class", "generated/torch.optim.Adam.html#$"),
            "torch.optim.Optimizer": ("py:class", "optim.html#$"),
            "torch.distributions.Bernoulli": ("py:class", "distributions.html#$"),
            "torch.distributions.Categorical": ("py:class", "distributions.html#$"),
            "torch.distributed.barrier": ("py:function", "distributed.html#$"),
        },
    ),
    "pyro": (
        "Pyro",
        "stable",
        {
            "pyro.plate": ("py:class", "primitives.html#pyro.primitives.plate"),
            "pyro.sample": ("py:function", "primitives.html#pyro.primitives.sample"),
            "pyro.param": ("py:function", "primitives.html#pyro.primitives.param"),
            "pyro.module": ("py:function", "primitives.html#pyro.primitives.module"),
            "pyro.enable_validation": (
                "py:function",
                "primitives.html#pyro.primitives.enable_validation",
            ),
            "pyro.infer.SVI": ("py:class", "inference_algos.html#pyro.infer.svi.SVI"),
            "pyro.infer.ELBO": ("py:class", "inference_algos.html#pyro.infer.elbo.ELBO"),
            "pyro.infer.Trace_ELBO": (
                "py:class",
                "inference_algos.html#pyro.infer.trace_elbo.Trace_ELBO",
            ),
            "pyro.infer.TraceMeanField_ELBO": (
                "py:class",
                "inference_algos.html#pyro.infer.trace_mean_field_elbo.TraceMeanField_ELBO",
            ),
            "pyro.infer.Predictive": (
                "py:class",
                "inference_algos.html#pyro.infer.predictive.Predictive",
            ),
            "pyro.infer.MCMC": ("py:class", "mcmc.html#pyro.infer.mcmc.api.MCMC"),
            "pyro.poutine.block": ("py:function", "poutine.html#pyro.poutine.handlers.block"),
            "pyro.poutine.trace": ("py:function", "poutine.html#pyro.poutine.handlers.trace"),
            "pyro.poutine.scale": ("py:function", "poutine.html#pyro.poutine.handlers.scale"),
            "pyro.distributions.Bernoulli": ("py:class", "distributions.html#bernoulli"),
            "pyro.distributions.Categorical": ("py:class", "distributions.html#categorical"),
            "pyro.nn.PyroModule": ("py:class", "nn.html#pyro.nn.module.PyroModule"),
            "pyro.optim.PyroOptim": ("py:class", "optimization.html#pyro.optim.optim.PyroOptim"),
        },
    ),
}


def inventory(project: str, version: str, objects: dict[str, tuple[str, str]]) -> bytes:
    """An inventory in Sphinx's format 2: a plain header, then zlib-compressed entries."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = "".join(
        f"{name} {role} 1 {address} -\n" for name, (role, address) in sorted(objects.items())
    )
    return header.encode() + zlib.compress(lines.encode())


def main() -> None:
    """Write the three inventories."""
    HERE.mkdir(exist_ok=True)
    for key, (project, version, objects) in INVENTORIES.items():
        (HERE / f"{key}.inv").write_bytes(inventory(project, version, objects))


if __name__ == "__main__":
    main()
