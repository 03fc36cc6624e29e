"""``python -m oscar_elyra.palette``: list the component entry points."""

from __future__ import annotations

from oscar_elyra.palette import COMPONENTS


def main() -> int:
    """Print each entry point with its component YAML file."""
    print("OSCAR palette components (run one with: python -m oscar_elyra.palette.<name> -h):")
    for name, yaml_file in COMPONENTS.items():
        print(f"  {name:<16} {yaml_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
