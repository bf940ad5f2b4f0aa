"""Results to a self-contained plotly HTML report."""

from netsim.report.html import (
    write_attention_report, write_bench_report, write_compare_report, write_faults_report, write_production_report,
    write_replay_report, write_report, write_sweep_report, write_sweep_table_report, write_training_report,
)

__all__ = ["write_attention_report", "write_bench_report", "write_compare_report", "write_faults_report",
           "write_production_report", "write_replay_report", "write_report", "write_sweep_report",
           "write_sweep_table_report", "write_training_report"]
