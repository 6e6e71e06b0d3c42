"""Expressions: what each kind of expression gives, and the calls that make values known."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence

from .facts import (
    _CALLABLE_KINDS,
    _CLAMPS,
    _DATA,
    _DISTRIBUTIONS,
    _ELEMENTWISE,
    _IDENTITY,
    _KEPT_BY_INDEXING,
    _KEPT_BY_SHAPE,
    _LN10,
    _LOG_KINDS,
    _LOSS_MODULES,
    _LOSSES,
    _MEANS,
    _NET_WORDS,
    _NORMALISER_MODULES,
    _NORMALISERS,
    _PREDICTION,
    _PROB_KINDS,
    _RESHAPE,
    _SEQUENCES,
    _STAR_NAMES,
    _UNKNOWN,
    UNKNOWN_PATH,
    _Args,
    _batched,
    _bound_names,
    _dict_of,
    _dotted,
    _either,
    _int,
    _is_ten,
    _item,
    _keeps_batch,
    _keyword,
    _list_of,
    _loader_targets,
    _number,
    _paths,
    _same,
    _short,
    _stacked_logits,
    _stop_positional,
    _tuple_of,
    _Value,
)


class _Expressions:
    """Mixin of :class:`~pyro_logits_lint._engine.analysis._Analyzer`: one method per expression."""

    def ev(self, node: ast.AST, env: dict[str, _Value]) -> _Value | None:
        """Evaluate an expression: check the calls in it; return what is known of its value.

        One method per kind of expression (:data:`_EXPRESSIONS`); any other kind is evaluated
        child by child and gives nothing.
        """
        method = _EXPRESSIONS.get(type(node).__name__)
        if method is None:
            for child in ast.iter_child_nodes(node):
                self.ev(child, env)
            return None
        return getattr(self, method)(node, env)  # type: ignore[no-any-return]

    def name(self, node: ast.Name, env: dict[str, _Value]) -> _Value | None:
        return self.lookup(node.id, env) if isinstance(node.ctx, ast.Load) else None

    def binop_chain(self, node: ast.BinOp, env: dict[str, _Value]) -> _Value | None:
        spine = []  # a + b + c + ... nests to the left: walk it without recursion
        left: ast.expr = node
        while isinstance(left, ast.BinOp):
            spine.append(left)
            left = left.left
        value = self.ev(left, env)
        for binop in reversed(spine):
            value = self.binop(binop, value, self.ev(binop.right, env))
        return value

    def unary(self, node: ast.UnaryOp, env: dict[str, _Value]) -> _Value | None:
        return _DATA if _batched(self.ev(node.operand, env)) else None

    def conditional(self, node: ast.IfExp, env: dict[str, _Value]) -> _Value | None:
        self.ev(node.test, env)
        return _same(self.ev(node.body, env), self.ev(node.orelse, env))

    def walrus(self, node: ast.NamedExpr, env: dict[str, _Value]) -> _Value | None:
        value = self.ev(node.value, env)
        self.assign(node.target, value, node.value, env)
        return value

    def attribute(self, node: ast.Attribute, env: dict[str, _Value]) -> _Value | None:
        """What an attribute is: of ``self``, of an object, of a module, or ``F.<loss>`` named.

        ``self.<attr>`` is a submodule, a method or a property; ``obj.<attr>`` what the object's
        constructor set; ``module.<name>`` a class or function of the project.
        """
        owner = self.ev(node.value, env)
        kept = self.object_attribute(owner, node.attr)
        if kept is not None:
            return kept
        if node.attr == "data" and owner is not None and owner.kind in _KEPT_BY_SHAPE | {"data"}:
            return owner  # x.data is x without its graph
        if not self.is_self(node.value):
            return self.module_member(node) or self.function_reference(node)
        assert self.cls is not None
        method = self.cls.methods.get(node.attr)
        if node.attr in self.cls.attrs:
            return self.cls.attrs[node.attr]
        if method is not None and any(
            (_dotted(d) or "").endswith("property") for d in method.decorator_list
        ):
            return self.function_summary(method, self.cls)
        if method is not None:
            return _Value("function", node=method, owner=self.cls)
        return None

    def subscript(self, node: ast.Subscript, env: dict[str, _Value]) -> _Value | None:
        value = self.ev(node.value, env)
        self.ev(node.slice, env)
        if not isinstance(node.ctx, ast.Load) or value is None:
            return None
        if value.kind == "tuple":
            index = _int(node.slice)
            return _item(value, index) if index is not None else None
        if value.kind == "dict":
            entries = dict(value.attrs)
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return entries.get(key.value)
            return _either(entries.values())  # MODELS[name]: any of the registered classes
        if value.kind == "list":
            return value.element
        # Entries of probabilities are probabilities; a slice of log_softmax output is no
        # longer normalised, so it is not reported as redundant, unless only dim 0 is indexed
        # and the rows were normalised over another dim (output[1:] of a sequence).
        if value.kind == "log_softmax" and not value.dim0 and _first_dim_only(node.slice):
            return value
        return value if value.kind in _KEPT_BY_INDEXING else None

    def sequence(self, node: ast.List | ast.Tuple, env: dict[str, _Value]) -> _Value | None:
        values = [self.ev(e, env) for e in node.elts]
        if not isinstance(node.ctx, ast.Load) or any(isinstance(e, ast.Starred) for e in node.elts):
            return None
        return _tuple_of(values) if isinstance(node, ast.Tuple) else _list_of(values)

    def dictionary(self, node: ast.Dict, env: dict[str, _Value]) -> _Value | None:
        """``{"logits": z, "probs": p}``: the entries under constant keys."""
        entries: dict[str, _Value | None] = {}
        constant = True
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None:
                self.ev(key, env)
            known = self.ev(value, env)
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                entries[key.value] = known
            else:
                constant = False  # **other or a computed key: what it holds is not known
        return _dict_of(entries) if constant else None

    def new_scope(
        self, node: ast.Lambda | ast.SetComp | ast.DictComp, env: dict[str, _Value]
    ) -> _Value | None:
        """A lambda or set/dict comprehension: the names it binds hide the enclosing ones."""
        hidden = _bound_names(ast.iter_child_nodes(node), mutations=False)
        if isinstance(node, ast.Lambda):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            hidden.update(a.arg for a in params if a is not None)
        inner = {k: v for k, v in env.items() if k not in hidden}
        for child in ast.iter_child_nodes(node):
            self.ev(child, inner)
        return None

    def function_reference(self, node: ast.Attribute) -> _Value | None:
        """``F.cross_entropy`` or ``torch.softmax`` named, not called (``loss_fn = F.nll_loss``)."""
        if not self.torch_like(node):
            return None
        if node.attr in _LOSSES:
            return _Value("loss", node.attr, loss=node.attr)
        if node.attr in _LOSS_MODULES:  # the class, given to build later (criterion=nn.X)
            return _Value("loss", node.attr, loss=_LOSS_MODULES[node.attr])
        if node.attr in _NORMALISERS:
            source = f"`{_short(node)}`"
            return _Value("module", source, node.lineno, returns=_NORMALISERS[node.attr])
        return None

    def comprehension(
        self, node: ast.ListComp | ast.GeneratorExp, env: dict[str, _Value]
    ) -> _Value:
        """A list of what ``elt`` is, with the loop targets bound (elements, networks, data)."""
        hidden = _bound_names(ast.iter_child_nodes(node), mutations=False)
        inner = {k: v for k, v in env.items() if k not in hidden}
        for generator in node.generators:
            items = self.ev(generator.iter, inner)
            target = generator.target
            if isinstance(target, ast.Name):
                if items is not None and items.kind in _SEQUENCES and items.element is not None:
                    inner[target.id] = items.element
                elif isinstance(generator.iter, ast.Name) and _net_name(generator.iter.id):
                    inner[target.id] = _Value("module")  # for model in models
            inner.update(dict.fromkeys(_loader_targets(target, generator.iter), _DATA))
            for condition in generator.ifs:
                self.ev(condition, inner)
        return _Value("list", element=self.ev(node.elt, inner))

    def binop(self, node: ast.BinOp, left: _Value | None, right: _Value | None) -> _Value | None:
        numbers = _number(node.left), _number(node.right)

        def log10() -> _Value:
            return _Value("log10", f"`{_short(node)}`", node.lineno)

        if isinstance(node.op, ast.Div) and (
            (right is not None and right.kind == "ln10")
            or (numbers[1] is not None and abs(numbers[1] - _LN10) < 1e-4)
        ):
            return log10()  # log(p) / log(10)
        if isinstance(node.op, ast.Mult) and any(
            n is not None and abs(n - 1 / _LN10) < 1e-5 for n in numbers
        ):
            return log10()  # log(p) * log10(e)
        if isinstance(node.op, (ast.Add, ast.Sub)) and left and right and left.kind == "log10":
            return log10() if right.kind == "log10" else None  # log10(p) - log10(1 - p)
        if isinstance(node.op, ast.Sub) and isinstance(node.right, ast.Call):
            # x - x.logsumexp(dim, keepdim=True) is a log_softmax written out.
            name, recv, function_form = self.callee(node.right)
            args = _stop_positional(node.right.args)
            operand = (args[0] if args else None) if function_form else recv
            dims = args[1:2] if function_form else args[:1]
            dim = dims[0] if dims else _keyword(node.right, "dim", "axis")
            if name == "logsumexp" and operand and ast.dump(operand) == ast.dump(node.left):
                source = f"`{_short(node)}` (a log_softmax)"
                return _Value("log_softmax", source, node.lineno, _int(dim) == 0, _batched(left))
        if isinstance(node.op, ast.Div) and left is not None and left.kind == "stacked_sum":
            return _Value("logit_mean", left.source, node.lineno, node=node)
        if isinstance(node.op, ast.Add):
            # p + eps is still a probability, as in log(p + 1e-8).
            for value, number in ((left, numbers[1]), (right, numbers[0])):
                if (
                    value
                    and value.kind in _PROB_KINDS
                    and number is not None
                    and 0 <= number < 1e-3
                ):
                    return value
        return _DATA if _batched(left) or _batched(right) else None

    def callee(self, node: ast.Call) -> tuple[str | None, ast.expr | None, bool]:
        """The called name, the receiver of a method call, and whether it is a function form.

        ``F.softmax(x)``, ``torch.softmax(x)`` and ``self.softmax(x)`` are function forms (the
        tensor is the first argument); ``x.softmax()`` is a method form (the tensor is the
        receiver). A bare name is known if it was imported (``from torch.nn.functional import
        softmax as sm`` gives ``softmax``), is capitalised (a class such as ``Categorical``) and
        not defined in the file, or comes from a star import of torch, pyro or numpyro.
        """
        func = node.func
        if isinstance(func, ast.Attribute):
            dotted = _dotted(func.value)
            if (dotted and dotted.split(".")[0] in self.modules) or self.is_self(func.value):
                return func.attr, None, True
            return func.attr, func.value, False
        if isinstance(func, ast.Name) and func.id not in self.defs:
            if func.id in self.aliases:
                return self.aliases[func.id].rsplit(".", 1)[-1], None, True
            if func.id[:1].isupper() or (self.star_torch and func.id in _STAR_NAMES):
                return func.id, None, True
        return None, None, True

    def call(self, node: ast.Call, env: dict[str, _Value]) -> _Value | None:
        func = node.func
        receiver = target = None
        on_self = False  # a method run on this object: what it sets on self is kept
        if isinstance(func, ast.Attribute):
            receiver = self.ev(func.value, env)
            if self.is_self(func.value):
                target, on_self = self.ev(func, env), True
            elif _is_super(func.value) and self.cls is not None:  # super().__init__(model)
                receiver = self.lookup(self.self_name, env) if self.self_name else None
                target, on_self = self.inherited(func.attr), True
            else:
                target = (
                    self.module_member(func)
                    or self.method(receiver, func.attr)
                    or self.object_attribute(receiver, func.attr)  # t.model(x)
                )
        elif self.is_self(func):
            assert self.cls is not None
            me = self.ev(func, env)  # self(x) runs forward, on this object
            target = me if me is not None else _Value("instance", node=self.cls.node)
        elif isinstance(func, ast.Name):
            target = self.lookup(func.id, env)
        else:
            target = self.ev(func, env)
        values = [self.ev(a, env) for a in node.args]
        keywords: dict[str, tuple[ast.expr, _Value | None]] = {}
        for kw in node.keywords:
            value = self.ev(kw.value, env)
            if kw.arg is not None:
                keywords[kw.arg] = (kw.value, value)
        positional = _stop_positional(node.args)
        args = _Args(positional, values[: len(positional)], keywords)

        name, recv, function_form = self.callee(node)
        helper = _OWN_HELPERS.get(name or "") if self.ours(func) else None
        if helper is not None:  # pl.observe_bernoulli("y", torch.sigmoid(z), y)
            family, position = helper
            expr, value = args.get(position, "logits")
            if expr is not None:
                where = f"the logits of `{_short(func)}`"
                self.check_logits(expr, value, family, where, f"`{_short(func)}`")
            return None
        getattr_call = (
            isinstance(func, ast.Name) and func.id == "getattr" and "getattr" not in self.defs
        )
        if getattr_call and len(node.args) >= 2:  # getattr(models, "LeNet")
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                dotted = ast.Attribute(value=node.args[0], attr=attr.value, ctx=ast.Load())
                return self.module_member(dotted)
        if name in _DISTRIBUTIONS and (target is None or target.kind not in ("class", "function")):
            self.check_distribution(name, args, positional=self.torch_like(func))
            return None
        if "logits" in keywords:
            expr, value = keywords["logits"]
            self.check_logits(expr, value, None, f"`logits=` of `{_short(func)}`")
        if target is None and "criterion" in keywords:  # skorch: NeuralNet(Net, criterion=...)
            self.trainer_criterion(node, args)
        if target is not None and target.kind in _CALLABLE_KINDS:
            bound_to = receiver if isinstance(func, ast.Attribute) else None
            self.last_sets.clear()
            result = self.call_value(node, target, args, bound_to, on_self=on_self)
            holder = func.value if isinstance(func, ast.Attribute) else None
            obj = receiver if receiver is not None and receiver.kind == "instance" else None
            if self.last_sets and isinstance(holder, ast.Name) and obj is not None:
                # clf.set_loss(loss): the object now holds what the method set on self
                attrs = {**dict(obj.attrs), **self.last_sets}
                env[holder.id] = dataclasses.replace(obj, attrs=tuple(sorted(attrs.items())))
            return result
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("forward", "__call__")
            and receiver is not None
            and receiver.kind in _CALLABLE_KINDS
        ):
            return self.call_value(node, receiver, args)  # model.forward(x) is model(x)
        if name is None:
            if isinstance(func, ast.Name) and any(w in func.id.lower() for w in _NET_WORDS):
                return _scores(args.get(0)[1])  # net(x): raw scores, and it keeps the batch
            if isinstance(func, ast.Name) and func.id == "sum" and func.id not in self.defs:
                return self.sum_of(node, args)
            return None
        if function_form:
            in_expr, in_value = args.get(0, "input")
            dim = args.get(1, "dim", "axis")[0]
        else:
            in_expr, in_value = recv, receiver
            dim = args.get(0, "dim", "axis")[0]
        if in_expr is not None:
            value = self.tensor_call(node, name, function_form, in_expr, in_value, dim, args)
            if value is not _UNKNOWN:
                return value
        return self.other_call(node, name, function_form, args, env)

    def tensor_call(
        self,
        node: ast.Call,
        name: str,
        function_form: bool,
        in_expr: ast.expr,
        in_value: _Value | None,
        dim: ast.expr | None,
        args: _Args,
    ) -> _Value | None:
        """A call on a tensor ``in_expr``: normalisers, logs, means, losses, reshapes."""
        func = node.func
        line = node.lineno
        if name in _NORMALISERS:
            self.check_mean(in_value, f"`{_short(func)}`")
            applied = _NORMALISERS[name]
            if in_value is not None and in_value.kind == _SAME_FAMILY_OF.get(applied, applied):
                target = f"the input of `{_short(func)}`"
                self.check_logits(in_expr, in_value, None, target, f"`{_short(func)}`")
            return _Value(
                _NORMALISERS[name],
                f"`{_short(func)}` output",
                line,
                _int(dim) == 0,
                _batched(in_value),
            )
        if name == "log10":
            return _Value("log10", f"`{_short(node)}`", line)
        if name == "log":
            base = args.get(1, "base")[0] if function_form else None
            if base is not None and _number(base) == 10:
                return _Value("log10", f"`{_short(node)}`", line)
            if _is_ten(in_expr):
                return _Value("ln10")
            if in_value is not None and in_value.kind in _PROB_KINDS:
                kind = "log_softmax" if in_value.kind == "softmax" else "logsigmoid"
                source = f"`{_short(node)}` (log of {in_value.kind})"
                return _Value(kind, source, line, in_value.dim0, in_value.batched)
            return None
        if name in _IDENTITY and not function_form:
            return in_value
        if name in _SHAPE_ONLY and in_value is not None and in_value.kind in _KEPT_BY_SHAPE:
            return in_value  # probs.view(-1, C) are still probabilities
        if name == "exp" and in_value is not None and in_value.kind in _LOG_KINDS:
            kind = "softmax" if in_value.kind == "log_softmax" else "sigmoid"
            source = f"`{_short(node)}` (exp of {in_value.kind})"
            return _Value(kind, source, line, in_value.dim0, in_value.batched)
        if name in _CLAMPS and in_value is not None and in_value.kind in _PROB_KINDS:
            return in_value
        if name in _MEANS:
            source = _stacked_logits(in_expr)
            if source is not None and _int(dim) == 0:
                return _Value("logit_mean", source, line, node=node)
            if in_value is not None and in_value.kind == "stacked" and _int(dim) == in_value.dim:
                return _Value("logit_mean", in_value.source, line, node=node, dim=in_value.dim)
            return None
        if name in _PREDICTION:
            self.check_mean(in_value, f"`{name}`")
            return None
        if name in _LOSSES and function_form and self.torch_like(func):
            self.check_loss(name, f"`{_short(func)}`", in_expr, in_value)
            return None
        if name in _ELEMENTWISE:
            return _DATA if _batched(in_value) else None
        if name in ("view", "reshape", "flatten") and _keeps_batch(node, name, function_form):
            return _DATA
        return _UNKNOWN

    def other_call(
        self, node: ast.Call, name: str, function_form: bool, args: _Args, env: dict[str, _Value]
    ) -> _Value | None:
        """Constructors of modules and losses, containers, in-place methods, submodules."""
        func = node.func
        if function_form and name in ("cat", "concat", "concatenate", "stack", "vstack"):
            return self.joined(node, name, args)
        if name in _ALLOCATORS and (self.torch_like(func) or not function_form):
            return _Value("buffer")  # torch.zeros(T, B, C), x.new_zeros(...): filled later
        if function_form and name == "Variable":  # the old autograd wrapper: the same tensor
            return args.get(0, "data")[1]
        if function_form and name in _WRAPPERS:
            return args.get(0, "module", "model")[1]  # nn.DataParallel(model) runs model
        owner = getattr(func, "value", None)
        current = env.get(owner.id) if isinstance(owner, ast.Name) else None
        if not function_form and current is not None and name in _GROWERS:
            assert isinstance(owner, ast.Name)
            grown = _grown(current, name, args.values)
            if grown is None:
                env.pop(owner.id, None)
            else:
                env[owner.id] = grown
            return None
        if function_form and name in _NORMALISER_MODULES:
            dim0 = _int(args.get(0, "dim")[0]) == 0
            kind = _NORMALISER_MODULES[name]
            return _Value("module", f"`{_short(func)}`", node.lineno, dim0, returns=kind)
        if function_form and name in _LOSS_MODULES and self.torch_like(func):
            return _Value("loss", name, loss=_LOSS_MODULES[name])
        if function_form and name == "Sequential":
            last = args.values[-1] if args.values else None
            if last is not None and last.kind == "module" and last.returns:
                source = f"`{_short(func)}` ending in {last.source}"
                return _Value("module", source, node.lineno, last.dim0, returns=last.returns)
            return _Value("module")
        if function_form and name[:1].isupper() and isinstance(func, ast.Attribute):
            layer = (_dotted(func.value) or "").endswith("nn")
            return _Value("module") if layer else None  # another torch.nn layer
        if not function_form and name.endswith("_") and not name.startswith("_"):
            recv = getattr(func, "value", None)
            if isinstance(recv, ast.Name):
                env.pop(recv.id, None)  # an in-place method changes the tensor's values
            return None
        if function_form and self.is_self(getattr(func, "value", None)):
            return _DATA if _batched(args.get(0)[1]) else None  # a submodule of self
        return None

    def joined(self, node: ast.Call, name: str, args: _Args) -> _Value | None:
        """``torch.cat(list)`` keeps what the elements are.

        ``torch.stack`` of network outputs stacks samples along its dim, which a mean over that
        dim averages.
        """
        items = args.values[0] if args.values else None
        element = items.element if items is not None and items.kind in _SEQUENCES else None
        if element is None:
            return None
        if element.kind in _KEPT_BY_SHAPE:
            return element
        if name == "stack" and element.scores:
            dim = args.get(1, "dim")[0]
            stacked_dim = _int(dim) if dim is not None else 0
            if stacked_dim is not None:
                source = f"`{_short(node)}` (network outputs)"
                return _Value("stacked", source, node.lineno, dim=stacked_dim)
        return _DATA if element.batched else None

    def sum_of(self, node: ast.Call, args: _Args) -> _Value | None:
        """``sum(outputs)`` of network outputs: divided by a count, it averages them."""
        items = args.values[0] if args.values else None
        element = items.element if items is not None and items.kind in _SEQUENCES else None
        if element is not None and element.scores:
            return _Value("stacked_sum", f"`{_short(node)}` (network outputs)", node.lineno)
        return None

    def object_attribute(self, owner: _Value | None, name: str) -> _Value | None:
        """``obj.name`` for an object of a project class, as far as it is known.

        What the class sets the same way for every object (``self.fc = nn.Linear(...)``, grown
        by ``add_module``) first, then what this object's constructor was given.
        """
        if owner is None or owner.kind != "instance" or not isinstance(owner.node, ast.ClassDef):
            return None
        fixed = self.class_info(owner.node).attrs.get(name)
        return fixed or dict(owner.attrs).get(name)

    def method(self, receiver: _Value | None, name: str) -> _Value | None:
        """``obj.name`` for an object of a project class: the method (inherited ones too)."""
        if receiver is not None and receiver.kind == "either":  # an object chosen by path
            return _either(
                self.method(one, name) if one != UNKNOWN_PATH else UNKNOWN_PATH
                for one in receiver.items
            )
        if receiver is None or receiver.kind != "instance":
            return None
        if not isinstance(receiver.node, ast.ClassDef):
            return None
        info = self.class_info(receiver.node)
        found = info.methods.get(name)
        return _Value("function", node=found, owner=info) if found is not None else None

    def trainer_criterion(self, node: ast.Call, args: _Args) -> None:
        """A library's trainer given a network and ``criterion=``: the loss gets its output.

        As skorch's ``NeuralNetClassifier(module, criterion=nn.CrossEntropyLoss)`` does; the
        trainer itself is not read, so only an explicit ``criterion=`` is followed.
        """
        net_expr, net = args.get(0, "module", "model")
        criterion = args.get(None, "criterion")[1]
        if net_expr is None or net is None or criterion is None or criterion.kind != "loss":
            return
        if net.kind == "class" and isinstance(net.node, ast.ClassDef):
            net = self.constructed(self.class_info(net.node), _Args([], [], {}))
        if net is None or net.kind != "instance":
            return
        output = self.call_value(node, net, _Args([], [], {}))  # the trainer calls it
        label = f"`criterion={criterion.source}` of `{_short(node.func)}`"
        self.check_loss(criterion.loss, label, net_expr, output)

    def inherited(self, name: str) -> _Value | None:
        """``super().<name>``: the method of a base of the class that defines this method."""
        assert self.cls is not None
        owner = self.defining_class(self.cls.node)
        for base in owner.bases if owner is not None else []:
            base_node = self.class_of(base, owner)  # type: ignore[arg-type]
            found = self.class_info(base_node).methods.get(name) if base_node else None
            if found is not None:
                return _Value("function", node=found, owner=self.cls)
        return None

    def defining_class(self, cls: ast.ClassDef, depth: int = 0) -> ast.ClassDef | None:
        """The class in ``cls`` and its bases whose body defines the method being analysed."""
        if self.func in cls.body:
            return cls
        for base in cls.bases if depth < 16 else []:
            base_node = self.class_of(base, cls)
            found = self.defining_class(base_node, depth + 1) if base_node else None
            if found is not None:
                return found
        return None

    def call_value(
        self,
        node: ast.Call,
        target: _Value,
        args: _Args,
        receiver: _Value | None = None,
        *,
        on_self: bool = False,
    ) -> _Value | None:
        """A call of something whose value is known: a module, a loss, a class or a function.

        ``receiver`` is the object a method is called on; its method sees it as ``self``. With
        ``on_self`` (``self.setup(...)``, ``super().__init__(...)``) what the method sets on
        ``self`` is kept on this object too.
        """
        in_expr, in_value = args.get(0, "input")
        if target.kind == "either":  # called on one path or another: each is followed
            return _paths(
                self.call_value(node, one, args, receiver)
                if one is not None and one != UNKNOWN_PATH
                else None
                for one in target.items
            )
        if target.kind == "module":
            if not target.returns:
                return _scores(in_value)
            self.check_mean(in_value, f"`{_short(node.func)}`")
            source = f"{target.source} output"
            return _Value(target.returns, source, node.lineno, target.dim0, _batched(in_value))
        if target.kind == "loss":
            label = f"`{_short(node.func)}` ({target.source})"
            self.check_loss(target.loss, label, in_expr, in_value)
            return None
        if target.kind == "class" and isinstance(target.node, ast.ClassDef):
            return self.constructed(self.class_info(target.node), args)
        summary = None
        if target.kind == "instance" and isinstance(target.node, ast.ClassDef):
            info = self.class_info(target.node)
            forward = info.methods.get("forward") or info.methods.get("__call__")
            if forward is not None:
                bindings = {
                    **self.bind(_Value("function", node=forward, owner=info), forward, args)
                }
                bindings.update(_self_binding(forward, target))
                summary = self.function_summary(forward, info, bindings)
        elif target.kind == "function" and isinstance(
            target.node, (ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            bindings = self.bind(target, target.node, args)
            if target.owner is not None and receiver is not None and receiver.kind == "instance":
                bindings.update(_self_binding(target.node, receiver))
            summary, sets = self.analyse_call(target.node, target.owner, bindings)
            self.last_sets.clear()
            self.last_sets.update((k, v) for k, v in sets.items() if v is not None)
            if on_self:
                for attr, value in sets.items():
                    earlier = self.self_sets.get(attr, value)
                    self.self_sets[attr] = _same(earlier, value)
        if (
            summary is not None
            and _batched(in_value)
            and not summary.batched
            and summary.kind != "tuple"
        ):
            # A network keeps the batch dim of its input.
            return _Value(summary.kind, summary.source, summary.line, summary.dim0, True)
        if summary is None and target.kind == "instance":
            return _scores(in_value)
        return summary


# softmax(softmax(z)), log_softmax(softmax(z)), sigmoid(sigmoid(z)): normalised twice
_SAME_FAMILY_OF = {"log_softmax": "softmax", "logsigmoid": "sigmoid"}


# This package's own likelihood helpers: the family and the position of their logits.
_OWN_HELPERS = {
    "bernoulli": ("binary", 0),
    "categorical": ("categorical", 0),
    "observe_bernoulli": ("binary", 1),
    "observe_categorical": ("categorical", 1),
}


# Calls that allocate a tensor to be filled in (outputs = torch.zeros(T, B, C)).
_ALLOCATORS = frozenset(
    {"zeros", "empty", "ones", "full", "zeros_like", "empty_like", "new_zeros", "new_empty"}
)


# Calls that give back the network they are given, wrapped or copied.
_WRAPPERS = frozenset(
    {"DataParallel", "DistributedDataParallel", "FullyShardedDataParallel", "deepcopy", "compile"}
)


_SHAPE_ONLY = _RESHAPE | {"resize", "resize_as", "narrow", "select", "movedim", "swapaxes"}


_GROWERS = frozenset({"append", "extend", "insert", "add_module", "update"})


def _first_dim_only(index: ast.expr) -> bool:
    """``x[1:]``, ``x[t]``: an index that selects along dim 0 alone."""
    return isinstance(index, ast.Slice) or (
        isinstance(index, ast.Constant) and isinstance(index.value, int)
    )


def _is_super(node: ast.AST) -> bool:
    """``super()`` (or ``super(Cls, self)``)."""
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _self_binding(method: ast.FunctionDef | ast.AsyncFunctionDef, obj: _Value) -> dict[str, _Value]:
    """``{"self": obj}`` for a method called on the object ``obj`` (nothing for plain ones)."""
    params = [*method.args.posonlyargs, *method.args.args]
    decorators = {_dotted(d) for d in method.decorator_list}
    if not params or decorators & {"staticmethod", "classmethod"} or not obj.attrs:
        return {}
    return {params[0].arg: obj}


def _scores(x: _Value | None) -> _Value:
    """What calling a network on ``x`` gives: raw scores, batched if ``x`` is."""
    return _Value("data", batched=_batched(x), scores=True)


def _grown(current: _Value, method: str, values: Sequence[_Value | None]) -> _Value | None:
    """A list after ``.append(v)``/``.extend(vs)``, an nn.Sequential after ``.add_module``...

    ... or a dict after ``.update(other)``.
    """
    if current.kind == "dict" or method == "update":
        other = values[0] if values else None
        if current.kind != "dict" or other is None or other.kind != "dict":
            return None  # updated with what is not known
        return _dict_of({**dict(current.attrs), **dict(other.attrs)})
    if current.kind == "module" and method in ("add_module", "append"):
        added = values[-1] if values else None
        return added if added is not None and added.kind == "module" else _Value("module")
    if current.kind != "list":
        return current
    if method == "extend":
        extra = values[0] if values else None
        new = [extra.element] if extra is not None and extra.kind == "list" else [None]
    else:
        new = [values[-1] if values else None]
    old = [] if current.source == "empty" else [current.element]
    return _list_of([*old, *new])


def _net_name(name: str) -> bool:
    return any(word in name.lower() for word in _NET_WORDS)


# expression type -> the method that evaluates it
_EXPRESSIONS = {
    "Name": "name",
    "Call": "call",
    "BinOp": "binop_chain",
    "UnaryOp": "unary",
    "IfExp": "conditional",
    "NamedExpr": "walrus",
    "Attribute": "attribute",
    "Subscript": "subscript",
    "List": "sequence",
    "Tuple": "sequence",
    "Dict": "dictionary",
    "ListComp": "comprehension",
    "GeneratorExp": "comprehension",
    "Lambda": "new_scope",
    "SetComp": "new_scope",
    "DictComp": "new_scope",
}
