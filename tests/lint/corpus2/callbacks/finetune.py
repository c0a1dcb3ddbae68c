from lightning.pytorch.callbacks import BaseFinetuning


class FreezeBackbone(BaseFinetuning):
    def __init__(self, unfreeze_at_epoch: int = 5):
        super().__init__()
        self.unfreeze_at_epoch = unfreeze_at_epoch

    def freeze_before_training(self, pl_module):
        self.freeze(pl_module.backbone)

    def finetune_function(self, pl_module, current_epoch, optimizer):
        if current_epoch == self.unfreeze_at_epoch:
            self.unfreeze_and_add_param_group(modules=pl_module.backbone, optimizer=optimizer)
