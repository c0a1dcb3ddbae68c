import lightning as L

trainer = L.Trainer(max_epochs=10, enable_progress_bar=False, gradient_clip_val=0.5)
