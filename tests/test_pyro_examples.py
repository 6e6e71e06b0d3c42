"""The helpers and check_logits() on the patterns of Pyro's own example models.

Each test writes, in its own small form, the shapes, plates, distributions and inference of one
of Pyro's examples (vae, ss_vae_M2, hmm, dmm, lda, scanvi, the MCMC and importance sampling
tutorials) and compares the helpers with the hand-written site, or checks what check_logits()
reports.
"""

from __future__ import annotations

import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from pyro import poutine
from pyro.infer import (
    MCMC,
    NUTS,
    SVI,
    Importance,
    JitTrace_ELBO,
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceGraph_ELBO,
    config_enumerate,
)
from pyro.optim import Adam
from pyro.poutine.block_messenger import BlockMessenger

import pyro_logits as pl


def caught(fn) -> list[warnings.WarningMessage]:
    """Every warning ``fn`` issues, with Python's deduplication off."""
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        fn()
    return [w for w in found if issubclass(w.category, pl.LogitsWarning)]


def elbo_losses(model, guide, *args, steps: int = 10, loss=None) -> list[float]:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(model, guide, Adam({"lr": 1e-2}), loss or Trace_ELBO())
    return [svi.step(*args) for _ in range(steps)]


# ------------------------------------------------------------------------------------------------
# 1. Continuous Bernoulli values: pixel intensities as Pyro's VAE examples observe them


def relaxed_reference(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x log sigmoid(z) + (1 - x) log sigmoid(-z)`` in float64."""
    z, x = z.double(), x.double()
    return x * F.logsigmoid(z) + (1 - x) * F.logsigmoid(-z)


def test_bernoulli_without_validation_scores_values_between_0_and_1_as_torch_does() -> None:
    z = torch.linspace(-30, 30, 41).repeat(11, 1)
    x = torch.linspace(0, 1, 11)[:, None].expand(11, 41)  # 0, 0.1, ..., 1: the ends included
    got = pl.bernoulli(z, validate=False).log_prob(x)
    assert_close(got, relaxed_reference(z, x), rtol=1e-6, atol=1e-6)
    torch_says = dist.Bernoulli(logits=z, validate_args=False).log_prob(x)
    assert_close(got, torch_says, rtol=1e-5, atol=1e-5)
    assert torch.equal(got[0], F.logsigmoid(-z[0])) and torch.equal(got[-1], F.logsigmoid(z[-1]))


def test_bernoulli_values_between_0_and_1_at_infinite_logits_follow_the_limit() -> None:
    z = torch.tensor([math.inf, math.inf, math.inf, -math.inf, -math.inf, -math.inf])
    x = torch.tensor([1.0, 0.0, 0.3, 1.0, 0.0, 0.3])
    got = pl.bernoulli(z, validate=False).log_prob(x)
    assert got.tolist() == [0.0, -math.inf, -math.inf, -math.inf, 0.0, -math.inf]


def test_bernoulli_with_pyro_validation_off_scores_values_between_0_and_1() -> None:
    z, x = torch.randn(64), torch.rand(64)
    with pyro.validation_enabled(False):
        got = pl.bernoulli(z).log_prob(x)
        observed = poutine.trace(lambda: pl.observe_bernoulli("x", z, x)).get_trace()
    assert_close(got, relaxed_reference(z, x), rtol=1e-6, atol=1e-6)
    assert_close(observed.nodes["x"]["fn"].log_prob(x), relaxed_reference(z, x), rtol=1e-6)


def test_validating_helpers_refuse_values_between_0_and_1_and_say_how_to_score_them() -> None:
    z, x = torch.randn(4, 784), torch.rand(4, 784)
    with pytest.raises(ValueError, match=r"binary obs \(0 or 1\) for site 'x' but got values such"):
        pl.observe_bernoulli("x", z, x, validate=True)
    with pytest.raises(ValueError, match=r"pass validate=False: the site then scores x log p"):
        pl.observe_bernoulli("x", z, x, validate=True)
    with pytest.raises(ValueError, match=r"support"):
        pl.bernoulli(z, validate=True).log_prob(x)


class Decoder(torch.nn.Module):
    """The decoder of Pyro's VAE example: z -> hidden -> one score per pixel."""

    def __init__(self, z_dim: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(z_dim, hidden), torch.nn.Linear(hidden, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.softplus(self.fc1(z)))


class Encoder(torch.nn.Module):
    def __init__(self, z_dim: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(784, hidden)
        self.loc, self.scale = torch.nn.Linear(hidden, z_dim), torch.nn.Linear(hidden, z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.softplus(self.fc1(x))
        return self.loc(h), self.scale(h).exp()


def vae(likelihood: str):
    """Pyro's VAE: a data plate of the model's own, pixels observed with validation off."""
    torch.manual_seed(0)
    encoder, decoder = Encoder(), Decoder()

    def model(x: torch.Tensor) -> None:
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(torch.zeros(x.shape[0], 4), 1.0).to_event(1))
            scores = decoder(z)
            if likelihood == "hand-written logits":
                pyro.sample(
                    "obs", dist.Bernoulli(logits=scores, validate_args=False).to_event(1), obs=x
                )
            elif likelihood == "hand-written probs":  # vae.py: a sigmoid decoder, probs
                pyro.sample(
                    "obs",
                    dist.Bernoulli(torch.sigmoid(scores), validate_args=False).to_event(1),
                    obs=x,
                )
            elif likelihood == "helper logits":
                pl.observe_bernoulli("obs", scores, x, event_dim=1, validate=False)
            else:
                probs = torch.sigmoid(scores)
                pl.observe_bernoulli("obs", probs=probs, obs=x, event_dim=1, validate=False)

    def guide(x: torch.Tensor) -> None:
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            loc, scale = encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return model, guide


@pytest.mark.mnist
def test_vae_on_real_mnist_intensities_trains_as_the_hand_written_site(mnist_dir) -> None:
    from pyro_logits.datasets import load_mnist

    images, _ = load_mnist("test", data_dir=mnist_dir)
    x = images[:64].reshape(64, 784).float()
    x = x / 255 if x.max() > 1 else x
    assert ((x > 0) & (x < 1)).float().mean() > 0.05  # intensities, not only 0 and 1
    for parametrisation in ("logits", "probs"):
        reference = elbo_losses(*vae(f"hand-written {parametrisation}"), x)
        helper = elbo_losses(*vae(f"helper {parametrisation}"), x)
        assert_close(torch.tensor(helper), torch.tensor(reference), rtol=1e-5)
        assert reference[-1] < reference[0]


# ------------------------------------------------------------------------------------------------
# 2. Inference paths: MCMC, importance sampling, JitTrace_ELBO


def logistic_data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(40, 2)
    return x, torch.bernoulli(torch.sigmoid(x @ torch.tensor([1.5, -1.0])))


def logistic_model(misuse: bool):
    bias = torch.zeros((), requires_grad=True)  # a graph to read, also where w is a plain draw

    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        w = pyro.sample("w", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        scores = x @ w + bias
        logits = torch.sigmoid(scores) if misuse else scores
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Bernoulli(logits=logits), obs=y)

    return model


def run_nuts(model, *args) -> None:
    MCMC(NUTS(model), num_samples=3, warmup_steps=3, disable_progbar=True).run(*args)


@pytest.mark.parametrize("misuse", [True, False])
def test_check_logits_around_mcmc_run_sees_the_model_mcmc_blocks(misuse: bool) -> None:
    data = logistic_data()

    def around_run() -> None:
        with pl.check_logits():
            run_nuts(logistic_model(misuse), *data)

    found = caught(around_run)
    assert [w.category for w in found] == ([pl.ProbsAsLogitsWarning] if misuse else [])
    if misuse:
        assert "sample site 'y' (Bernoulli(logits=...))" in str(found[0].message)
        assert found[0].filename == __file__
    assert BlockMessenger._process_message is not None
    assert "pyro_logits" not in BlockMessenger._process_message.__module__


def test_check_logits_around_the_model_inside_nuts_warns_once() -> None:
    found = caught(lambda: run_nuts(pl.check_logits(logistic_model(True)), *logistic_data()))
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]


def test_a_site_the_users_own_block_hides_is_checked_once() -> None:
    model = poutine.block(logistic_model(True), hide=["y"])
    with pl.check_logits():
        found = caught(lambda: model(*logistic_data()))
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]
    with pytest.warns(pl.ProbsAsLogitsWarning), pl.check_logits():
        trace = poutine.trace(model).get_trace(*logistic_data())
    assert "y" not in trace.nodes and "w" in trace.nodes  # the block still hides it from Pyro


def test_check_logits_around_importance_sampling() -> None:
    def sample() -> None:
        with pl.check_logits():
            Importance(logistic_model(True), guide=None, num_samples=5).run(*logistic_data())

    assert [w.category for w in caught(sample)] == [pl.ProbsAsLogitsWarning]


def test_helpers_under_jit_trace_elbo_add_no_tracer_warning_and_check_logits_still_warns() -> None:
    x, y = logistic_data()
    net = torch.nn.Linear(2, 1)

    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("net", net)
        with pyro.plate("data", x.shape[0]):
            pl.observe_bernoulli("y", net(x).squeeze(-1), y)
            pyro.sample("c", pl.categorical(net(x).expand(-1, 3)), obs=y.long())

    def misused(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("net", net)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("y", dist.Bernoulli(logits=torch.sigmoid(net(x).squeeze(-1))), obs=y)  # noqa: PL003

    def guide(x: torch.Tensor, y: torch.Tensor) -> None:
        pass

    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        elbo_losses(model, guide, x, y, steps=2, loss=JitTrace_ELBO())
    assert [str(w.message)[:60] for w in found if "pyro_logits" in w.filename] == []
    with pl.check_logits():
        logits_warnings = caught(lambda: elbo_losses(misused, guide, x, y, loss=JitTrace_ELBO()))
    assert [w.category for w in logits_warnings] == [pl.ProbsAsLogitsWarning]


def test_trace_graph_elbo_adds_no_warning_from_inside_bernoulli_log_prob() -> None:
    """AIR's z_pres sites under TraceGraph_ELBO, whose ProvenanceTensor calls torch's losses."""
    net = torch.nn.Linear(3, 1)

    def model(x: torch.Tensor) -> None:
        pyro.module("net", net)
        with pyro.plate("data", 8):
            pyro.sample("z_pres", dist.Bernoulli(logits=torch.sigmoid(net(x)).squeeze(-1)))  # noqa: PL003

    def guide(x: torch.Tensor) -> None:
        with pyro.plate("data", 8):
            pyro.sample("z_pres", dist.Bernoulli(logits=net(x).squeeze(-1)))

    x = torch.randn(8, 3)
    with pl.check_logits():
        found = caught(lambda: elbo_losses(model, guide, x, steps=3, loss=TraceGraph_ELBO()))
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]
    assert str(found[0].message).startswith("sample site 'z_pres' (Bernoulli(logits=...))")


# ------------------------------------------------------------------------------------------------
# 3. Probability vectors: LDA's topics and simplex parameters


def lda_model(likelihood: str):
    """LDA's shapes: topic-word distributions on the simplex, per-word topic assignments."""

    def model(words: torch.Tensor) -> None:
        with pyro.plate("topics", 3):
            topic_words = pyro.sample("topic_words", dist.Dirichlet(torch.ones(12) / 12))
        with pyro.plate("documents", words.shape[1]):
            doc_topics = pyro.sample("doc_topics", dist.Dirichlet(torch.ones(3)))
            with pyro.plate("words", words.shape[0]):
                topic = pyro.sample(
                    "word_topics", dist.Categorical(doc_topics), infer={"enumerate": "parallel"}
                )
                p = topic_words[topic]
                if likelihood == "hand-written probs":
                    pyro.sample("doc_words", dist.Categorical(p), obs=words)
                elif likelihood == "hand-written log":
                    pyro.sample("doc_words", dist.Categorical(logits=p.log()), obs=words)
                elif likelihood == "helper log":
                    pl.observe_categorical("doc_words", p.log(), words)
                else:
                    pl.observe_categorical("doc_words", probs=p, obs=words)

    return model


def lda_guide(words: torch.Tensor) -> None:
    concentration = pyro.param(
        "topic_concentration", torch.ones(3, 12), constraint=dist.constraints.positive
    )
    with pyro.plate("topics", 3):
        pyro.sample("topic_words", dist.Dirichlet(concentration))
    positive = dist.constraints.positive
    doc = pyro.param("doc_concentration", torch.ones(words.shape[1], 3), constraint=positive)
    with pyro.plate("documents", words.shape[1]):
        pyro.sample("doc_topics", dist.Dirichlet(doc))


def test_lda_probability_vectors_as_logits_are_silent_and_the_helpers_take_probs() -> None:
    words = torch.randint(0, 12, (8, 5))
    loss = TraceEnum_ELBO(max_plate_nesting=2)
    reference = elbo_losses(lda_model("hand-written probs"), lda_guide, words, loss=loss)
    for likelihood in ("hand-written log", "helper log", "helper probs"):
        with pl.check_logits():
            run = lambda likelihood=likelihood: elbo_losses(  # noqa: E731
                lda_model(likelihood), lda_guide, words, loss=loss
            )
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = run()
        assert_close(torch.tensor(got), torch.tensor(reference), rtol=1e-5)


def test_a_simplex_parameter_as_logits_is_a_note_that_says_nothing_is_wrong() -> None:
    p = pyro.param("p", torch.tensor([[0.2, 0.3, 0.5]]), constraint=dist.constraints.simplex)
    found = pl.diagnose(p.log(), "categorical")
    assert found.kind == "log_softmax" and not found.harmful and found.source == "values"
    assert "already normalised log-probabilities" in found.message("site")
    assert "pass the raw scores" not in found.message("site")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.categorical(p.log())
        pl.observe_categorical("y", p.log(), torch.tensor([2]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: pl.categorical(torch.zeros(2, 3), probs=torch.ones(2, 3) / 3), "got both"),
        (lambda: pl.bernoulli(), "got neither"),
        (lambda: pl.observe_bernoulli("y", obs=torch.ones(3)), "got neither"),
    ],
)
def test_exactly_one_of_logits_and_probs(make, match: str) -> None:
    with pytest.raises(ValueError, match=rf"exactly one of logits= or probs= .* but {match}"):
        make()


def test_probs_are_checked_and_agree_with_torch_in_float64() -> None:
    p = torch.tensor([[0.1, 0.6, 0.3], [0.0, 0.5, 0.5]], dtype=torch.float64)
    labels = torch.tensor([1, 2])
    assert_close(pl.categorical(probs=p).log_prob(labels), p[[0, 1], labels].log(), rtol=1e-12)
    q = torch.tensor([0.25, 0.5, 0.9], dtype=torch.float64)
    x = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    reference = x * q.log() + (1 - x) * (1 - q).log()
    assert_close(pl.bernoulli(probs=q).log_prob(x), reference, rtol=1e-12)
    with pytest.raises(ValueError, match=r"'probs' .* probabilities in \[0, 1\] but got .* -2\.0"):
        pl.bernoulli(probs=torch.tensor([0.5, -2.0]))
    with pytest.raises(ValueError, match=r"raw network scores are logits: pass them as logits="):
        pl.observe_categorical("y", probs=torch.tensor([[3.0, 1.0]]), obs=torch.tensor([0]))


# ------------------------------------------------------------------------------------------------
# 4. Unsized plates: ss_vae_M2 writes every plate as pyro.plate("data")


def ss_vae_model(helpers: bool):
    torch.manual_seed(0)
    decoder = torch.nn.Linear(4 + 10, 784)

    def model(xs: torch.Tensor, ys: torch.Tensor | None, dataset_size: int | None = None) -> None:
        pyro.module("decoder", decoder)
        batch = xs.shape[0]
        with pyro.plate("data"):
            alpha = torch.ones(batch, 10) / 10
            if helpers:
                ys = pl.observe_categorical("y", alpha.log(), ys, dataset_size=dataset_size)
            else:
                with poutine.scale(scale=(dataset_size or batch) / batch):
                    ys = pyro.sample("y", dist.Categorical(alpha), obs=ys)
            z = pyro.sample("z", dist.Normal(torch.zeros(batch, 4), 1.0).to_event(1))
            one_hot = F.one_hot(ys, 10).float()  # (10, 1, 10) when y is enumerated
            batch = torch.broadcast_shapes(z.shape[:-1], one_hot.shape[:-1])
            scores = decoder(torch.cat([z.expand(*batch, 4), one_hot.expand(*batch, 10)], -1))
            if helpers:
                probs = torch.sigmoid(scores)
                pl.observe_bernoulli("x", probs=probs, obs=xs, event_dim=1, validate=False)
            else:
                pyro.sample(
                    "x",
                    dist.Bernoulli(torch.sigmoid(scores), validate_args=False).to_event(1),
                    obs=xs,
                )

    return model


def ss_vae_guide(xs: torch.Tensor, ys: torch.Tensor | None, dataset_size: int | None = None):
    loc = pyro.param("loc", torch.zeros(xs.shape[0], 4))
    with pyro.plate("data"):
        if ys is None:
            pyro.sample("y", dist.Categorical(logits=torch.zeros(xs.shape[0], 10)))
        pyro.sample("z", dist.Normal(loc, 1.0).to_event(1))


def test_unsized_plates_as_in_ss_vae_m2_equal_the_hand_written_sites() -> None:
    xs, ys = torch.rand(16, 784), torch.randint(0, 10, (16,))
    for args in [(xs, ys), (xs, ys, 1000)]:
        reference = elbo_losses(ss_vae_model(False), ss_vae_guide, *args)
        helper = elbo_losses(ss_vae_model(True), ss_vae_guide, *args)
        assert_close(torch.tensor(helper), torch.tensor(reference), rtol=1e-5)
    trace = poutine.trace(ss_vae_model(True)).get_trace(xs, ys, 1000)
    assert trace.nodes["y"]["scale"] == 1000 / 16
    guide, loss = config_enumerate(ss_vae_guide, "parallel"), TraceEnum_ELBO(max_plate_nesting=1)
    reference = elbo_losses(ss_vae_model(False), guide, xs, None, loss=loss)
    helper = elbo_losses(ss_vae_model(True), guide, xs, None, loss=loss)
    assert_close(torch.tensor(helper), torch.tensor(reference), rtol=1e-5)


def test_unsized_plate_with_a_mask_and_a_column_head() -> None:
    z, y = torch.randn(6, 1), torch.bernoulli(torch.full((6, 1), 0.5))
    mask = torch.tensor([True, False, True, True, False, True])

    def model() -> None:
        with pyro.plate("data"):
            pl.observe_bernoulli("y", z, y, event_dim=1, mask=mask)

    site = poutine.trace(model).get_trace().nodes["y"]
    reference = (dist.Bernoulli(logits=z).log_prob(y).sum(-1) * mask).sum()
    assert_close(site["fn"].log_prob(y).mul(mask).sum(), reference, rtol=1e-6)
    assert site["fn"].batch_shape == (6,)


# ------------------------------------------------------------------------------------------------
# 5. One warning per mistake: Pyro's sequence models name a site per time step


def hmm_model(helpers: bool, steps: int = 24):
    """hmm.py's shapes: a Markov chain of hidden states, one Bernoulli site per time step."""
    emission = torch.randn(3, 5, requires_grad=True)

    def model(sequences: torch.Tensor) -> None:
        transition = pyro.sample("transition", dist.Dirichlet(torch.ones(3, 3)).to_event(1))
        tones = pyro.plate("tones", 5, dim=-1)
        with pyro.plate("sequences", sequences.shape[0], dim=-2):
            state = 0
            for t in pyro.markov(range(steps)):
                state = pyro.sample(
                    f"x_{t}", dist.Categorical(transition[state]), infer={"enumerate": "parallel"}
                )
                with tones:
                    scores = torch.sigmoid(emission[state.squeeze(-1)])  # the mistake
                    if helpers:
                        pl.observe_bernoulli(f"y_{t}", scores, sequences[:, t])  # noqa: PL003
                    else:
                        pyro.sample(f"y_{t}", dist.Bernoulli(logits=scores), obs=sequences[:, t])  # noqa: PL003

    return model


def hmm_guide(sequences: torch.Tensor) -> None:
    concentration = pyro.param("c", torch.ones(3, 3), constraint=dist.constraints.positive)
    pyro.sample("transition", dist.Dirichlet(concentration).to_event(1))


@pytest.mark.parametrize("helpers", [False, True], ids=["hand-written", "helpers"])
def test_one_mistake_in_a_per_step_site_warns_once_over_every_step(helpers: bool) -> None:
    sequences = torch.bernoulli(torch.full((4, 24, 5), 0.3))
    model = hmm_model(helpers)
    loss = TraceEnum_ELBO(max_plate_nesting=2)
    with pl.check_logits():
        found = caught(lambda: elbo_losses(model, hmm_guide, sequences, steps=20, loss=loss))
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]
    assert "site 'y_0'" in str(found[0].message) and found[0].filename == __file__


def test_two_mistakes_warn_twice_and_a_new_warnings_block_warns_again() -> None:
    z = torch.randn(8, requires_grad=True)

    def twice() -> None:
        for _ in range(5):
            pl.bernoulli(torch.sigmoid(z))  # noqa: PL003
            pl.bernoulli(F.logsigmoid(z))  # noqa: PL004

    assert [w.category for w in caught(twice)] == [
        pl.ProbsAsLogitsWarning,
        pl.LogSigmoidAsLogitsWarning,
    ]
    assert len(caught(twice)) == 2  # each catch_warnings block starts afresh, as Python does


def dmm_model(likelihood: str):
    """dmm.py's shapes: per-step latents and pixel sites in one minibatch plate, masked by length."""
    torch.manual_seed(0)
    emitter = torch.nn.Linear(2, 6)

    def model(x: torch.Tensor, mask: torch.Tensor) -> None:
        pyro.module("emitter", emitter)
        z = torch.zeros(x.shape[0], 2)
        with pyro.plate("z_minibatch", x.shape[0]):
            for t in pyro.markov(range(1, x.shape[1] + 1)):
                step = mask[:, t - 1 : t]
                z = pyro.sample(f"z_{t}", dist.Normal(0.9 * z, 1.0).mask(step).to_event(1))
                scores = emitter(z)
                if likelihood == "hand-written":
                    probs = torch.sigmoid(scores)
                    pyro.sample(
                        f"obs_x_{t}",
                        dist.Bernoulli(probs).mask(step).to_event(1),
                        obs=x[:, t - 1],
                    )
                elif likelihood == "helper":
                    pl.observe_bernoulli(
                        f"obs_x_{t}", scores, x[:, t - 1], event_dim=1, mask=mask[:, t - 1]
                    )
                else:  # the mistake: sigmoid output given as logits
                    logits = torch.sigmoid(scores)
                    pyro.sample(
                        f"obs_x_{t}",
                        dist.Bernoulli(logits=logits).mask(step).to_event(1),  # noqa: PL003
                        obs=x[:, t - 1],
                    )

    return model


def dmm_guide(x: torch.Tensor, mask: torch.Tensor) -> None:
    loc = pyro.param("loc", torch.zeros(x.shape[1], x.shape[0], 2))
    with pyro.plate("z_minibatch", x.shape[0]):
        for t in pyro.markov(range(1, x.shape[1] + 1)):
            step = mask[:, t - 1 : t]
            pyro.sample(f"z_{t}", dist.Normal(loc[t - 1], 1.0).mask(step).to_event(1))


def test_dmm_masked_per_step_sites_equal_the_hand_written_ones_and_warn_once() -> None:
    x = torch.bernoulli(torch.full((5, 7, 6), 0.4))
    lengths = torch.tensor([7, 3, 5, 1, 7])
    mask = torch.arange(7) < lengths[:, None]
    reference = elbo_losses(dmm_model("hand-written"), dmm_guide, x, mask)
    helper = elbo_losses(dmm_model("helper"), dmm_guide, x, mask)
    assert_close(torch.tensor(helper), torch.tensor(reference), rtol=1e-5)
    with pl.check_logits():
        found = caught(lambda: elbo_losses(dmm_model("mistake"), dmm_guide, x, mask))
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]


# ------------------------------------------------------------------------------------------------
# 6, 7. Losses and messages: the kind, the loss's own dim, the distribution's own keywords


def test_flat_softmax_rows_into_nll_loss_are_probabilities_not_raw_scores() -> None:
    probs = F.softmax(torch.randn(32, 5000) * 0.01, dim=1)  # an untrained language model
    with torch.no_grad(), pl.check_logits():
        found = caught(lambda: F.nll_loss(probs, torch.randint(0, 5000, (32,))))  # noqa: PL003
    assert [w.category for w in found] == [pl.ProbsAsLogProbsWarning]
    assert "values: all in [0, 1] and every row sums to 1" in str(found[0].message)
    assert "pass F.log_softmax of the raw scores" in str(found[0].message)


def test_nll_loss_over_the_time_dim_names_the_loss_dim_and_not_the_batch() -> None:
    scores = torch.randn(7, 4, 10, requires_grad=True)  # (time, batch, classes) as an RNN gives
    log_probs = F.log_softmax(scores, dim=0).view(-1, 10)  # noqa: PL003
    with pl.check_logits():
        found = caught(lambda: F.nll_loss(log_probs, torch.randint(0, 10, (28,))))
    message = str(found[0].message)
    assert found[0].category is pl.NormalizedOverWrongDimWarning
    assert "log_softmax over dim 0, not over the class dim 1" in message
    assert "Categorical" not in message and "batch" not in message


def zinb_site(gate_logits: torch.Tensor, logits: torch.Tensor) -> None:
    """scanvi's likelihood: a zero-inflated negative binomial over gene counts."""
    with pyro.plate("cells", 6):
        pyro.sample(
            "x",
            dist.ZeroInflatedNegativeBinomial(
                total_count=torch.ones(6, 4),
                logits=logits,  # noqa: PL004
                gate_logits=gate_logits,  # noqa: PL003
            ).to_event(1),
            obs=torch.randint(0, 5, (6, 4)).float(),
        )


def test_zinb_messages_name_its_own_keywords() -> None:
    z = torch.randn(6, 4, requires_grad=True)
    with pl.check_logits():
        gate = caught(lambda: zinb_site(torch.sigmoid(z), z))
    with pl.check_logits():
        logits = caught(lambda: zinb_site(z, F.logsigmoid(z)))
    assert "as gate=" in str(gate[0].message) and "probs=" not in str(gate[0].message)
    assert "ZeroInflatedNegativeBinomial(gate_logits=...)" in str(gate[0].message)
    assert "where ZeroInflatedNegativeBinomial logits are expected" in str(logits[0].message)
    assert "Bernoulli" not in str(logits[0].message)


# ------------------------------------------------------------------------------------------------
# 8. Distributions that wrap others


def discrete_hmm_site(observation_logits: torch.Tensor) -> None:
    """hmm.py's model_7: the hidden chain marginalised by DiscreteHMM."""
    init = torch.zeros(3, requires_grad=True)
    transition = torch.randn(3, 3, requires_grad=True)
    observations = dist.Bernoulli(logits=observation_logits).to_event(1)  # noqa: PL003
    with pyro.plate("sequences", 2):
        pyro.sample(
            "y",
            dist.DiscreteHMM(init, transition, observations, duration=10),
            obs=torch.bernoulli(torch.full((2, 10, 5), 0.5)),
        )


def test_discrete_hmm_observation_distribution_is_looked_through() -> None:
    scores = torch.randn(3, 5, requires_grad=True)
    with pl.check_logits():
        wrong = caught(lambda: discrete_hmm_site(torch.sigmoid(scores)))
    with pl.check_logits():
        right = caught(lambda: discrete_hmm_site(scores))
    assert [w.category for w in wrong] == [pl.ProbsAsLogitsWarning]
    assert "DiscreteHMM(observation_dist=Bernoulli(logits=...))" in str(wrong[0].message)
    assert right == []


def test_discrete_hmm_transition_logits_and_mixture_components_are_checked() -> None:
    z = torch.randn(2, 3, 5, requires_grad=True)

    def hmm_with_softmax_transitions() -> None:
        transition = F.softmax(torch.randn(3, 3, requires_grad=True), -1)
        d = dist.DiscreteHMM(torch.zeros(3), transition, dist.Normal(torch.zeros(3), 1.0))
        pyro.sample("y", d, obs=torch.randn(4))

    def mixture_of_bernoullis() -> None:
        components = dist.Bernoulli(logits=torch.sigmoid(z)).to_event(1)  # noqa: PL003
        mixture = dist.MixtureSameFamily(dist.Categorical(logits=torch.zeros(2, 3)), components)
        with pyro.plate("data", 2):
            pyro.sample("x", mixture, obs=torch.ones(2, 5))

    with pl.check_logits():
        transition = caught(hmm_with_softmax_transitions)
        mixture = caught(mixture_of_bernoullis)
    assert [w.category for w in transition] == [pl.ProbsAsLogitsWarning]
    assert "DiscreteHMM(transition_logits=...)" in str(transition[0].message)
    assert [w.category for w in mixture] == [pl.ProbsAsLogitsWarning]
    assert "MixtureSameFamily(..., Bernoulli(logits=...))" in str(mixture[0].message)


def test_the_check_restores_pyros_block_messenger() -> None:
    original = BlockMessenger._process_message
    with pytest.raises(RuntimeError, match="boom"), pl.check_logits():
        raise RuntimeError("boom")
    assert BlockMessenger._process_message is original
