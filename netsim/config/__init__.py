"""Shared configuration helpers at the edge: YAML reading, pydantic errors as one-line messages,
output directories that never lose a user's files."""

from netsim.config.name import Name
from netsim.config.output_directory import MANIFEST, OutputDirectory
from netsim.config.validation_error import pydantic_error, validated
from netsim.config.yaml_file import MAX_DEPTH, parse_yaml, read_yaml

__all__ = ["MANIFEST", "MAX_DEPTH", "Name", "OutputDirectory", "parse_yaml", "pydantic_error", "read_yaml", "validated"]
