from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from models.dynamic_names import PerTaskModel


def run(loader):
    # the metric names are built at run time inside PerTaskModel: this monitor can see them
    Trainer(callbacks=[ModelCheckpoint(monitor="normals_val")], max_epochs=1).fit(PerTaskModel(), loader)
