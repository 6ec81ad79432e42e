"""``python -m supportloop ...``: the same command as the ``supportloop`` console script."""

from agent.cli import main

if __name__ == "__main__":
    main()
