"""Running training from the editor: settings, launching the runtime, reading its event stream, keeping
run history under `.torchbolt/runs/`, and turning events into progress, hints, hovers and diagnostics.

Everything here is torch-free: the server never imports torch; the runtime runs in a child process with
the user's interpreter and talks back through the JSON-lines stream defined in `torchbolt.events`.
"""
