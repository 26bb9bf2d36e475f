"""radscreen: age, sex and osteoporosis models on chest radiographs and CT."""

import os

# albumentations asks PyPI for its newest version on import: on an offline workstation that waits on the network,
# and a research run should not phone home. Set NO_ALBUMENTATIONS_UPDATE=0 to allow it.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from radscreen.utils.resolvers import register_resolvers  # noqa: E402

register_resolvers()

__version__ = "0.1.0"
