"""``python -m custodysim``: the same as the ``custodysim`` command."""

from custodysim.cli import main

if __name__ == "__main__":
    main()
