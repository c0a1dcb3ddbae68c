import lightning as L

trainer = L.Trainer(max_epochs="10", enable_progress_bar="false", gradient_clip_val="0.5")
