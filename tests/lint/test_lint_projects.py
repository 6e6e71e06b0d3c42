"""The lint on whole projects: values followed across files, tuples, modules and objects.

Each project is a few files as real code splits them (a model file, a training file, a package);
``{net}`` in a file is the network's output expression, the softmax mistake or, in the correct
twin, the raw scores. A line ending in ``# expect: CODE`` is where the mistake must be reported;
the twin must be clean.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from textwrap import dedent

import pyro_logits_lint as lint
import pytest

HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
MISTAKE = "F.softmax(self.fc(x), dim=1)"
CORRECT = "self.fc(x)"

NET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return {net}
"""
TUPLE_NET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        feats = self.fc(x)
        return {net}, feats
"""

CLASSIFIER = """

class Classifier:
    def __init__(self, net):
        self.net = net

    def set_loss(self, loss):
        self.loss = loss

    def step(self, x, y):
        return self.loss(self.net(x), y)  # expect: PL003
"""

PROJECTS: dict[str, dict[str, str]] = {
    "a tuple returned and unpacked in another file": {
        "model.py": TUPLE_NET,
        "train.py": """
        from model import Net

        model = Net()
        for x, y in loader:
            out, feats = model(x)
            loss = F.cross_entropy(out, y)  # expect: PL003
        """,
    },
    "a tuple element indexed, starred and nested unpacking": {
        "model.py": TUPLE_NET,
        "train.py": """
        from model import Net

        model = Net()
        first = model(x)[0]
        F.cross_entropy(first, y)  # expect: PL003
        F.cross_entropy(model(x)[-2], y)  # expect: PL003
        head, *rest = model(x)
        F.cross_entropy(head, y)  # expect: PL003
        (a, b), c = model(x), 0
        F.cross_entropy(a, y)  # expect: PL003
        F.cross_entropy(b, y)
        F.cross_entropy(model(x)[1], y)
        """,
    },
    "a discriminator's three outputs": {
        "nets.py": """
        class Disc(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                return self.fc(x), {net}, self.fc(x)
        """,
        "gan.py": """
        from nets import Disc

        disc = Disc()
        _, label, code = disc(img)
        F.cross_entropy(label, y)  # expect: PL003
        F.cross_entropy(code, y)
        """,
    },
    "import module, then module.Class()": {
        "model.py": NET,
        "train.py": """
        import model

        net = model.Net()
        F.cross_entropy(net(x), y)  # expect: PL003
        """,
    },
    "import package.module as alias": {
        "models/__init__.py": "",
        "models/lenet.py": NET,
        "train.py": """
        import models.lenet as lenet

        net = lenet.Net()
        F.cross_entropy(net(x), y)  # expect: PL003
        """,
    },
    "a package __init__ re-exports the class": {
        "models/__init__.py": "from .lenet import Net\n",
        "models/lenet.py": NET,
        "train.py": """
        from models import Net

        F.cross_entropy(Net()(x), y)  # expect: PL003
        """,
    },
    "from package import module": {
        "models/__init__.py": "",
        "models/lenet.py": NET,
        "train.py": """
        from models import lenet

        net = lenet.Net()
        F.cross_entropy(net(x), y)  # expect: PL003
        """,
    },
    "relative imports inside a package": {
        "pkg/__init__.py": "",
        "pkg/model.py": NET,
        "pkg/train.py": """
        from .model import Net

        F.cross_entropy(Net()(x), y)  # expect: PL003
        """,
    },
    "a star import": {
        "model.py": NET,
        "train.py": """
        from model import *

        F.cross_entropy(Net()(x), y)  # expect: PL003
        """,
    },
    "the loss in a function of another file, the model given by the caller": {
        "model.py": NET,
        "engine.py": """
        def fit(model, loader):
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)  # expect: PL003
                loss.backward()
        """,
        "main.py": """
        from engine import fit
        from model import Net

        fit(Net(), loader)
        """,
    },
    "a trainer class given the model and the loss in its constructor": {
        "model.py": NET,
        "trainer.py": """
        class Trainer:
            def __init__(self, model, criterion):
                self.model = model
                self.criterion = criterion

            def step(self, x, y):
                return self.criterion(self.model(x), y)  # expect: PL003
        """,
        "main.py": """
        from model import Net
        from trainer import Trainer

        trainer = Trainer(Net(), nn.CrossEntropyLoss())
        trainer.step(x, y)
        """,
    },
    "a base class constructor given the loss through super().__init__": {
        "model.py": NET,
        "base.py": """
        class BaseTrainer:
            def __init__(self, model, criterion):
                self.model = model
                self.criterion = criterion

            def step(self, x, y):
                return self.criterion(self.model(x), y)  # expect: PL003
        """,
        "trainer.py": """
        from base import BaseTrainer

        class Trainer(BaseTrainer):
            def __init__(self, model):
                super().__init__(model, nn.CrossEntropyLoss())
        """,
        "main.py": """
        from model import Net
        from trainer import Trainer

        Trainer(Net()).step(x, y)
        """,
    },
    "an instance passed to a method": {
        "model.py": NET,
        "trainer.py": """
        class Trainer:
            def __init__(self):
                self.criterion = nn.CrossEntropyLoss()

            def fit(self, model, loader):
                for x, y in loader:
                    self.criterion(model(x), y).backward()  # expect: PL003
        """,
        "main.py": """
        from model import Net
        from trainer import Trainer

        Trainer().fit(Net(), loader)
        """,
    },
    "a base class method calls forward of the subclass": {
        "base.py": """
        class Base(nn.Module):
            def loss(self, x, y):
                return F.cross_entropy(self(x), y)  # expect: PL003
        """,
        "model.py": """
        from base import Base

        class Net(Base):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                return {net}
        """,
        "train.py": """
        from model import Net

        Net().loss(x, y)
        """,
    },
    "a method inherited from a base class in another file": {
        "base.py": """
        class Base(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                return {net}
        """,
        "model.py": """
        from base import Base

        class Net(Base):
            pass
        """,
        "train.py": """
        from model import Net

        F.cross_entropy(Net()(x), y)  # expect: PL003
        """,
    },
    "a sub-module's own method, not forward": {
        "model.py": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def predict(self, x):
                return {net}
        """,
        "train.py": """
        from model import Net

        class Wrapper(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = Net()

            def forward(self, x, y):
                return F.cross_entropy(self.net.predict(x), y)  # expect: PL003
        """,
    },
    "a helper whose branches return different losses": {
        "model.py": NET,
        "losses.py": """
        def get_loss_func(kind):
            if kind == "ce":
                return nn.CrossEntropyLoss()
            elif kind == "bce":
                return nn.BCEWithLogitsLoss()
            return nn.MSELoss()
        """,
        "train.py": """
        from losses import get_loss_func
        from model import Net

        loss_fn = get_loss_func(args.loss)
        loss = loss_fn(Net()(x), y)  # expect: PL003
        """,
    },
    "a model chosen by if/elif among classes": {
        "models.py": NET
        + dedent("""
        class Other(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                return self.fc(x)
        """),
        "train.py": """
        from models import Net, Other

        if args.arch == "net":
            model = Net()
        elif args.arch == "other":
            model = Other()
        else:
            raise ValueError(args.arch)
        F.cross_entropy(model(x), y)  # expect: PL003
        """,
    },
    "a registry of model classes": {
        "models/__init__.py": """
        from .lenet import Net

        MODELS = {"lenet": Net}
        """,
        "models/lenet.py": NET,
        "train.py": """
        from models import MODELS

        model = MODELS[args.arch]()
        nn.CrossEntropyLoss()(model(x), y)  # expect: PL003
        """,
    },
    "a factory function and wrappers": {
        "model.py": NET
        + dedent("""
        def build():
            return Net()
        """),
        "train.py": """
        import copy

        from model import build

        model = nn.DataParallel(build())
        ema = copy.deepcopy(model)
        compiled = torch.compile(model)
        F.cross_entropy(model(x), y)  # expect: PL003
        F.cross_entropy(ema(x), y)  # expect: PL003
        F.cross_entropy(compiled(x), y)  # expect: PL003
        """,
    },
    "dict entries written and read back": {
        "model.py": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                out = {"feats": self.fc(x)}
                out["logits"] = {net}
                return out
        """,
        "train.py": """
        from model import Net

        out = Net()(x)
        F.cross_entropy(out["logits"], y)  # expect: PL003
        F.cross_entropy(out["feats"], y)
        """,
    },
    "a layer added to a sub-module in the constructor": {
        "model.py": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Sequential(nn.Linear(784, 10))
                self.fc.add_module("out", {layer})

            def forward(self, x):
                return self.fc(x)
        """,
        "train.py": """
        from model import Net

        F.cross_entropy(Net()(x), y)  # expect: PL003
        """,
    },
    "a skorch classifier given the network and criterion=": {
        "model.py": NET,
        "train.py": """
            from skorch import NeuralNetClassifier

            from model import Net

            clf = NeuralNetClassifier(Net, criterion=nn.CrossEntropyLoss, max_epochs=10)  # expect: PL003
            probs_clf = NeuralNetClassifier(Net, max_epochs=10)
            """,
    },
    "getattr on a module with a constant name": {
        "models.py": NET,
        "train.py": """
        import models

        model = getattr(models, "Net")()
        F.cross_entropy(model(x), y)  # expect: PL003
        """,
    },
    "a trainer's loss as a constructor default": {
        "model.py": NET,
        "trainer.py": """
        class Trainer:
            def __init__(self, model, criterion=nn.CrossEntropyLoss()):
                self.model = model
                self.criterion = criterion

            def step(self, x, y):
                return self.criterion(self.model(x), y)  # expect: PL003
        """,
        "main.py": """
        from model import Net
        from trainer import Trainer

        Trainer(Net()).step(x, y)
        """,
    },
}

SINGLE_FILE = {
    "this package's helpers are sinks": (
        """
        import pyro_logits as pl
        from pyro_logits import observe_categorical

        pl.observe_bernoulli("y", {sig}, y)  # expect: PL003
        pl.categorical({soft})  # expect: PL003
        observe_categorical("y", {soft}, y)  # expect: PL003
        torch.bernoulli(torch.sigmoid(z))
        """
    ),
    ".data and Variable keep what a tensor is": (
        """
        from torch.autograd import Variable

        p = {soft}.data
        F.cross_entropy(p, y)  # expect: PL003
        F.cross_entropy(Variable({soft}), y)  # expect: PL003
        """
    ),
    "normalised twice": (
        """
        lp = F.log_softmax({soft}, dim=1)  # expect: PL003
        F.nll_loss(lp, y)
        """
    ),
    "a Lightning module's training_step": (
        """
        import pytorch_lightning as L

        class Classifier(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(784, 10), {layer})

            def forward(self, x):
                return self.net(x)

            def training_step(self, batch, batch_idx):
                x, y = batch
                return F.cross_entropy(self(x), y)  # expect: PL003
        """
    ),
    "a with-logits loss wrapped in a loss class of the user's": (
        """
        class FocalLoss(nn.Module):
            def forward(self, scores, target):
                return F.binary_cross_entropy_with_logits(scores, target)  # expect: PL003

        criterion = FocalLoss()
        criterion({sig}, y)
        """
    ),
}


PATH_PROJECTS: dict[str, dict[str, str]] = {
    "a redundancy on every path is reported": {
        "models.py": """
            class A(nn.Module):
                def forward(self, x):
                    return F.log_softmax(x, dim=1)

            class B(nn.Module):
                def forward(self, x):
                    return F.log_softmax(x * 2, dim=1)
            """,
        "train.py": """
            from models import A, B

            model = A() if args.a else B()
            F.cross_entropy(model(x), y)  # expect: PL001
            """,
    },
    "a redundancy on one path only is not": {
        "models.py": """
            class A(nn.Module):
                def forward(self, x):
                    return F.log_softmax(x, dim=1)

            class B(nn.Module):
                def forward(self, x):
                    return x
            """,
        "train.py": """
            from models import A, B

            model = A() if args.a else B()
            F.cross_entropy(model(x), y)
            """,
    },
    "a network known on one path, unknown on the other": {
        "model.py": NET,
        "train.py": """
            from model import Net

            if not args.resume:
                model = Net()
            else:
                model = torch.load(args.resume)
            F.cross_entropy(model(x), y)  # expect: PL003
            """,
    },
    "a parameter replaced on one path": {
        "model.py": NET,
        "engine.py": """
            def fit(model, resume):
                if resume:
                    model = torch.load(resume)
                return F.cross_entropy(model(x), y)  # expect: PL003
            """,
        "main.py": """
            from engine import fit
            from model import Net

            fit(Net(), args.resume)
            """,
    },
    "an import inside a method": {
        "model.py": NET,
        "train.py": """
            class Callback:
                def on_start(self, x, y):
                    from model import Net

                    F.cross_entropy(Net()(x), y)  # expect: PL003
            """,
    },
    "a buffer filled step by step and returned": {
        "model.py": """
            class Seq2Seq(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.out = nn.Linear(32, 10)

                def forward(self, h, steps):
                    outputs = torch.zeros(steps, h.size(0), 10)
                    for t in range(steps):
                        outputs[t] = F.log_softmax(self.out(h), dim=1)
                    return outputs
            """,
        "train.py": """
            from model import Seq2Seq

            out = Seq2Seq()(h, 5)
            F.cross_entropy(out.view(-1, 10), y)  # expect: PL001
            F.cross_entropy(out[1:].view(-1, 10), y)  # expect: PL001
            F.nll_loss(out.view(-1, 10), y)
            """,
    },
    "stacked, concatenated and detached outputs": {
        "model.py": NET,
        "train.py": """
            from model import Net

            net = Net()
            outs = torch.stack([net(a), net(b)]).detach()
            F.cross_entropy(outs.view(-1, 10), y)  # expect: PL003
            both = torch.cat([net(a), net(b)])
            F.cross_entropy(both, y)  # expect: PL003
            """,
    },
    "an object built in two files, its attribute read in the second": {
        "trainer.py": """
            class Trainer:
                def __init__(self, criterion):
                    self.criterion = criterion
            """,
        "main_a.py": """
            from trainer import Trainer

            Trainer(nn.CrossEntropyLoss())
            """,
        "main_b.py": """
            from trainer import Trainer

            t = Trainer(nn.CrossEntropyLoss())
            t.criterion(F.softmax(z, dim=1), y)  # expect: PL003
            """,
    },
    "an object whose attribute is set, and a setter method": {
        "model.py": NET + CLASSIFIER,
        "train.py": """
            from model import Classifier, Net

            clf = Classifier(Net())
            clf.name = "softmax head"
            clf.set_loss(nn.CrossEntropyLoss())
            clf.step(x, y)
            """,
    },
    "a dict updated with another and read back": {
        "model.py": """
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(784, 10)

                def head(self, x):
                    return {"exist": F.softmax(self.fc(x), dim=1)}

                def forward(self, x):
                    output = {"feats": x}
                    output.update(self.head(x))
                    return output
            """,
        "train.py": """
            from model import Net

            F.cross_entropy(Net()(x)["exist"], y)  # expect: PL003
            """,
    },
    "iterating over a tensor of probabilities": {
        "train.py": """
            outputs = F.softmax(net(x), dim=-1)
            for out in outputs:
                F.cross_entropy(out, y)  # expect: PL003
            """,
    },
}


@pytest.mark.parametrize("name", list(PATH_PROJECTS))
def test_paths_objects_and_containers(name: str, tmp_path: Path) -> None:
    write(tmp_path, PATH_PROJECTS[name], MISTAKE)
    assert found(tmp_path) == expected(tmp_path)


# Code that must stay clean whatever the network gives: the evidence differs by path.
CLEAN = {
    "tensors that differ by path": """
        probs = F.softmax(z, dim=1) if calibrated else z
        F.cross_entropy(probs, y)
        """,
    "a loss chosen by path, given raw scores": """
        criterion = nn.CrossEntropyLoss() if weighted else nn.NLLLoss()
        criterion(F.log_softmax(z, dim=1) if nll else z, y)
        """,
}


def write(root: Path, files: dict[str, str], net: str) -> None:
    layer = "nn.Softmax(dim=1)" if net == MISTAKE else "nn.Identity()"
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = dedent(source).replace("{net}", net).replace("{layer}", layer)
        path.write_text(HEADER + body if body.strip() else body)


def expected(root: Path) -> list[tuple[str, str, int]]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = re.search(r"# expect: (PL\d{3})$", line)
            if match:
                out.append((path.relative_to(root).as_posix(), match.group(1), number))
    return out


def found(root: Path) -> list[tuple[str, str, int]]:
    results = lint.lint_paths([root])
    return sorted((Path(f.path).relative_to(root).as_posix(), f.code, f.line) for f in results)


@pytest.mark.parametrize("name", list(PROJECTS))
def test_the_mistake_is_reported_where_it_is(name: str, tmp_path: Path) -> None:
    write(tmp_path, PROJECTS[name], MISTAKE)
    assert found(tmp_path) == expected(tmp_path)


@pytest.mark.parametrize("name", list(PROJECTS))
def test_the_correct_twin_is_clean(name: str, tmp_path: Path) -> None:
    write(tmp_path, PROJECTS[name], CORRECT)
    assert found(tmp_path) == []


@pytest.mark.parametrize("name", list(SINGLE_FILE))
@pytest.mark.parametrize("mistake", [True, False], ids=["mistake", "correct twin"])
def test_single_file_constructs(name: str, mistake: bool, tmp_path: Path) -> None:
    sig, soft = ("torch.sigmoid(z)", "F.softmax(z, dim=1)") if mistake else ("z", "z")
    source = SINGLE_FILE[name].replace("{sig}", sig).replace("{soft}", soft)
    write(tmp_path, {"train.py": source}, MISTAKE if mistake else CORRECT)
    assert found(tmp_path) == (expected(tmp_path) if mistake else [])


@pytest.mark.parametrize("name", list(CLEAN))
def test_evidence_that_differs_by_path_is_not_reported(name: str, tmp_path: Path) -> None:
    write(tmp_path, {"train.py": CLEAN[name]}, CORRECT)
    assert found(tmp_path) == []


def test_a_notebook_follows_the_projects_files(tmp_path: Path) -> None:
    write(tmp_path, {"model.py": NET}, MISTAKE)
    cells = [
        {"cell_type": "code", "source": "import torch.nn.functional as F\nfrom model import Net"},
        {"cell_type": "code", "source": "net = Net()\nloss = F.cross_entropy(net(x), y)"},
    ]
    (tmp_path / "explore.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}}))
    results = lint.lint_paths([tmp_path])
    assert [(Path(f.path).name, f.cell, f.line, f.code) for f in results] == [
        ("explore.ipynb", 2, 2, "PL003")
    ]


def test_a_finding_in_a_shared_file_is_reported_once(tmp_path: Path) -> None:
    files = dict(PROJECTS["the loss in a function of another file, the model given by the caller"])
    files["other.py"] = files["main.py"]
    write(tmp_path, files, MISTAKE)
    assert found(tmp_path) == expected(tmp_path)


def test_a_very_long_call_chain_degrades_to_silence_not_a_crash(tmp_path: Path) -> None:
    chain = "".join(f"def f{i}(m, x):\n    return f{i + 1}(m, x)\n\n" for i in range(300))
    chain += "def f300(m, x):\n    return F.cross_entropy(m(x), y)\n\n"
    write(tmp_path, {"model.py": NET, "chain.py": "from model import Net\n" + chain}, MISTAKE)
    (tmp_path / "main.py").write_text(
        HEADER + "from chain import f0\nfrom model import Net\nf0(Net(), x)\n"
    )
    (tmp_path / "near.py").write_text(
        HEADER + "from model import Net\nF.cross_entropy(Net()(x), y)  # expect: PL003\n"
    )
    assert found(tmp_path) == expected(tmp_path)


@pytest.mark.parametrize("package", ["pyro", "torch/nn", "torch/distributions"])
def test_real_correct_packages_lint_clean_as_projects(package: str) -> None:
    """Installed code as one project: every construct the engine follows, and no finding."""
    import importlib.util

    top, _, sub = package.partition("/")
    spec = importlib.util.find_spec(top)
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations))) / sub
    assert lint.lint_paths([root]) == []
