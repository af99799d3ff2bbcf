"""snnc.train: training and retraining of snnc networks, with DGS, TPS and HNS.

* :mod:`.trainer` - the loop (:func:`train`), checkpoints, metrics, BN folding at the end;
* :mod:`.config` - :class:`TrainConfig`; :mod:`.resume` - the config of a resumed run;
* :mod:`.task_cls` / :mod:`.task_stereo` - classification (direct coding) and event stereo;
* :mod:`.data_stereo` - MVSEC windows with burn-in (images: :mod:`snnc.data.images`);
* :mod:`.dgs`, :mod:`.tps`, :mod:`.hns` - the searches (:mod:`.mixsearch`, :mod:`.mixed` for TPS/HNS);
* :mod:`.checkpoint` - the checkpoint format and :func:`load_model`.
"""

from snnc.train.checkpoint import load_checkpoint, load_model
from snnc.train.config import TrainConfig
from snnc.train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train", "load_checkpoint", "load_model"]
