"""A PyG ``InMemoryDataset`` view of a :class:`~cgpredict.datasets.family.Family`.

Pipeline position: model → CG → **features** (one ``Data`` per network, ``y`` = label) →
predictor → ranking/search.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
from torch_geometric.data import InMemoryDataset

from cgpredict.datasets.cache import CONVERTER_VERSION, _slug

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.datasets.family import Family


class FamilyGraphDataset(InMemoryDataset):
    """The CGs of a family as PyG graphs; ``y`` holds the label (NaN when unlabelled).

    With ``root=None`` everything stays in memory (CGs come from the CG cache); with a ``root``
    folder the collated graphs are also saved under ``root/processed`` in PyG's usual way.
    Each graph also carries ``idx`` (its position in the family).
    """

    def __init__(
        self,
        family: Family,
        root: str | os.PathLike[str] | None = None,
        transform: Any = None,
        pre_transform: Any = None,
        progress: bool = True,
    ) -> None:
        self.family = family
        self.progress = progress
        self._in_memory = root is None
        super().__init__(None if root is None else str(root), transform, pre_transform, log=False)
        if root is None:
            self._data, self.slices = self.collate(self._make_data_list())
        else:
            self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        fam = self.family
        return [f"{_slug(fam.name)}__{_slug(str(fam.task))}__{len(fam)}__{_slug(CONVERTER_VERSION)}.pt"]

    def download(self) -> None:  # nothing to download: graphs come from the builders
        return None

    def _make_data_list(self) -> list[Any]:
        fam = self.family
        data_list = []
        for index, cg in enumerate(fam.cgs(progress=self.progress)):
            data = cg.to_pyg()
            label = float("nan") if fam.labels is None else float(fam.labels[index])
            data.y = torch.tensor([label], dtype=torch.float32)
            data.idx = torch.tensor([index], dtype=torch.long)
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            data_list.append(data)
        return data_list

    # With root=None PyG would create raw/ and processed/ under a folder literally named "???".
    def _download(self) -> None:
        if not self._in_memory:
            super()._download()

    def _process(self) -> None:
        if not self._in_memory:
            super()._process()

    def process(self) -> None:
        self.save(self._make_data_list(), self.processed_paths[0])
