"""``python -m oscar_elyra.components``: list the component entry points."""

from oscar_elyra.components import COMPONENTS

if __name__ == "__main__":
    print("OSCAR palette components (run one with: python -m oscar_elyra.components.<name> -h):")
    for name, yaml_file in COMPONENTS.items():
        print(f"  {name:<16} {yaml_file}")
