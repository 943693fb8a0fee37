"""The lorawan.tts benchmark: downtime of the documented runbook against the lorawan.tts.upgrade playbook."""
