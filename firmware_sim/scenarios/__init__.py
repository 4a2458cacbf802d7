"""Example sensor scenarios shipped with the simulator (YAML files beside this module)."""
