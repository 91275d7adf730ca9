"""The folder that ``python -m autologagent sitecustomize`` prints for PYTHONPATH."""
