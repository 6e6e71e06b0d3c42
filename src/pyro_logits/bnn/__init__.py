"""Bayesian neural networks for classification, trained with Pyro's SVI.

The pieces are separate and swappable:

- :class:`BayesianNetwork`, the model, stated as an ``nn.Sequential`` of ``Linear``,
  ``Conv2d``, ``ReLU``, ``MaxPool2d`` and ``Flatten`` (:mod:`pyro_logits.bnn.layers`), and
  :class:`BayesianMLP`, its multilayer perceptron: a ``N(0, prior_scale**2)`` prior on every
  weight and bias and a categorical likelihood over the labels
  (:func:`~pyro_logits.observe_categorical`, which scales a minibatch to the full data set).
  It is a plain Pyro model with one sample site per weighted layer, so Pyro's own tools
  (``TraceMeanField_ELBO``, ``Predictive``) run it as they are.
- :class:`MeanFieldGuide`, the posterior: an independent Gaussian per weight, parametrised by
  its mean and log standard deviation.
- :class:`MeanFieldELBO`, the loss handed to :class:`pyro.infer.SVI`: the KL divergence from
  prior to posterior in closed form plus a one-sample estimate of the expected log-likelihood,
  by local reparameterisation (the default) or by sampling the weights. It is a Pyro
  ``ELBO``, and what it needs of the model and guide is a small protocol
  (:class:`MeanFieldModel`, :class:`MeanFieldPosterior`).
- :class:`BNNClassifier`: minibatch training by :class:`pyro.infer.SVI` (its guide and loss
  can be swapped), the posterior predictive and checkpoints.

Also here, by module: the layer specs (:mod:`~pyro_logits.bnn.layers`), Adam over all the
guide's params at once (:mod:`~pyro_logits.bnn.optim`), iterate averaging
(:mod:`~pyro_logits.bnn.averaging`) and plain networks of the same shapes
(:mod:`~pyro_logits.bnn.baseline`).

Why a loss of its own: ``TraceMeanField_ELBO`` computes the log-density of every weight under
prior and posterior before it knows it needs only their KL, and validates all of them, every
step; for the 478k weights of a 784-400-400-10 network that work costs more than the network
itself. :class:`MeanFieldELBO` touches each weight only to form its variance and KL (one fused
step, :func:`gaussian_variance_and_kl`) and traces one small site, the likelihood. Local
reparameterisation (Kingma, Salimans and Welling, 2015) samples each unit's pre-activation,
which is Gaussian given the layer's input, with mean ``h @ loc`` and variance
``h**2 @ scale**2``; it needs no weight samples and gives each example its own noise, so its
gradients vary less than those of one weight sample shared by a minibatch. On MNIST a step
costs about as much as with weight sampling.

Examples
--------
>>> import pyro, torch
>>> pyro.clear_param_store()
>>> x, y = torch.rand(64, 20), torch.randint(3, (64,))
>>> clf = BNNClassifier(BayesianMLP(20, (16,), 3), lr=0.01)
>>> losses = [clf.train_epoch(x, y, batch_size=16) for _ in range(2)]
>>> torch.allclose(clf.predict_log_probs(x[:5], num_samples=8).exp().sum(-1), torch.ones(5))
True
"""

from pyro_logits.bnn.classifier import BNNClassifier
from pyro_logits.bnn.distributed import DataParallel, init_data_parallel
from pyro_logits.bnn.guide import MeanFieldGuide
from pyro_logits.bnn.kernel import gaussian_variance_and_kl, layer_variances_and_kl
from pyro_logits.bnn.loss import MeanFieldELBO, MeanFieldModel, MeanFieldPosterior
from pyro_logits.bnn.model import ESTIMATORS, BayesianMLP, BayesianNetwork

__all__ = [
    "ESTIMATORS",
    "BNNClassifier",
    "BayesianMLP",
    "BayesianNetwork",
    "DataParallel",
    "MeanFieldELBO",
    "MeanFieldGuide",
    "MeanFieldModel",
    "MeanFieldPosterior",
    "gaussian_variance_and_kl",
    "init_data_parallel",
    "layer_variances_and_kl",
]
