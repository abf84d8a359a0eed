"""Turn the stage results into the report: one record per configuration, derived figures
(array area, utilization, GMAC/s) and the Pareto frontiers."""

from ..golden.schedule import MODEL_NAME, Workload, schedule_utilization_for
from .configs import ReportConfig
from .pareto import pareto_front

__all__ = ["config_record", "add_pareto", "FRONTS"]

#: The Pareto frontiers of the report: (name, x field, maximize x), accuracy (the mean
#: embedding cosine) always maximised.
FRONTS = (
    ("accuracy_vs_area", "klut", False),
    ("accuracy_vs_gmacs_per_klut_assumed_clock", "gmacs_per_klut_assumed_clock", True),
    ("accuracy_vs_gmacs_per_klut", "gmacs_per_klut", True),
)


def _array_area(row: dict, rows: int) -> dict:
    """The array's datapath estimate: ``rows`` times one row, plus the shared
    select-and-gather unit of the activation mode (weight memories, the shared unpacker and
    control are not in it)."""
    def total(flow, key):
        shared = row.get("shared")
        return rows * row[flow][key] + (shared[flow][key] if shared else 0)

    return {
        "lut4": total("nodsp", "lut4"), "ff": total("nodsp", "ff"),
        "carry": total("nodsp", "carry"), "lut_eq": total("nodsp", "lut_eq"),
        "dsp_flow_lut4": total("dsp", "lut4"), "dsp_flow_ff": total("dsp", "ff"),
        "dsp_flow_carry": total("dsp", "carry"), "dsp_flow_dsp": total("dsp", "dsp"),
        "gates": total("neutral", "gates"), "dff": total("neutral", "dff"),
        "transistors": total("neutral", "transistors"),
    }


def config_record(cfg: ReportConfig, results: dict, *, macs: int, workload: Workload,
                  assumed_mhz: float, stages: tuple) -> dict:
    """The report record of one configuration.

    Parameters
    ----------
    cfg : ReportConfig
    results : dict
        Stage name to the runner's outcome (``result``/``cached`` or ``error``); a stage
        missing here was not run for this configuration.
    macs : int
        MACs per cycle of every array.
    workload : Workload
        The job of the utilization model.
    assumed_mhz : float
        The equal clock of the ``*_assumed_clock`` figures (not a measurement).
    stages : tuple of str
        The stages this run was asked for.
    """
    rec = {
        "name": cfg.name, "mode": cfg.mode, "format": cfg.fmt.name, "ptq": cfg.ptq,
        "equivalent_bits": cfg.equivalent_bits,
        "storage_bits_per_element": cfg.storage_bits,
        "storage_bits_padded": cfg.storage_bits_padded,
        "hw": None, "accuracy": None, "area": None, "area_row": None, "utilization": None,
        "pnr": None, "fmax_mhz": None, "gmacs": None, "gmacs_per_klut": None,
        "gmacs_assumed_clock": None, "gmacs_per_klut_assumed_clock": None, "klut": None,
        "status": {}, "errors": {}, "cached": {}, "notes": [],
    }
    for stage in ("accuracy", "area", "pnr"):
        if stage not in stages:
            rec["status"][stage] = "not run"
        elif stage not in results:
            rec["status"][stage] = "n/a"
        elif "error" in results[stage]:
            rec["status"][stage] = "error"
            rec["errors"][stage] = results[stage]["error"]
        else:
            rec["status"][stage] = "cached" if results[stage]["cached"] else "computed"
            rec["cached"][stage] = results[stage]["cached"]
    if "accuracy" in results and "result" in results["accuracy"]:
        rec["accuracy"] = {k: v for k, v in results["accuracy"]["result"].items()
                           if k != "mask_hex"}
    if "area" in results and "result" in results["area"]:
        row = results["area"]["result"]
        rec["area_row"] = row
        rec["area"] = _array_area(row, cfg.rows)
        rec["klut"] = rec["area"]["lut4"] / 1000
    hw = cfg.hw
    rec["hw"] = {"digest": hw.digest(), "rows": hw.rows, "bank_size": hw.fmt.bank_size,
                 "macs_per_cycle": hw.rows * hw.fmt.bank_size, "act_bits": hw.act_bits,
                 "acc_bits": hw.acc_bits, "k_max": hw.k_max, "config": hw.to_dict()}
    if cfg.mode == "activation":
        rec["notes"].append("activation mode: area is R ActRows + the one shared SelectGather; "
                            "utilization from the activation-mode schedule (R + 1 weight "
                            "columns per tile, latency 5; datasheet §10.7); not placed and "
                            "routed, so no Fmax or measured GMAC/s")
    util = schedule_utilization_for(hw, workload)
    rec["utilization"] = {"value": util, "source": MODEL_NAME,
                          "workload": {"m": workload.m, "k": workload.k, "n": workload.n}}
    if rec["klut"]:
        rec["gmacs_assumed_clock"] = macs * assumed_mhz * util / 1000
        rec["gmacs_per_klut_assumed_clock"] = rec["gmacs_assumed_clock"] / rec["klut"]
    if "pnr" in results and "result" in results["pnr"]:
        pnr = results["pnr"]["result"]
        rec["pnr"] = pnr
        rec["fmax_mhz"] = pnr.get("fmax_mhz")
        whole = pnr.get("macs_per_cycle", macs) == macs
        if not whole:
            rec["notes"].append(
                f"Fmax measured on a {pnr['macs_per_cycle']}-MAC/cycle slice ({pnr['rows']} "
                f"of the {hw.rows} rows), not on the whole array, whose Fmax differs (longer "
                "nets; nextpnr also varies with the seed): no GMAC/s is given, GMAC/s/kLUT "
                "uses the slice's Fmax")
        if rec["fmax_mhz"] is not None:
            gmacs = macs * rec["fmax_mhz"] * util / 1000
            rec["gmacs"] = gmacs if whole else None
            if rec["klut"]:
                rec["gmacs_per_klut"] = gmacs / rec["klut"]
    return rec


def add_pareto(records: list[dict]) -> dict:
    """Mark every record's membership of each of :data:`FRONTS` (``rec["pareto"]``) and
    return ``{front: [names on it]}``; a front with fewer than two points is empty."""
    fronts = {}
    for rec in records:
        rec["pareto"] = {name: False for name, _, _ in FRONTS}
    for name, field, maximize in FRONTS:
        pts = [(r, (r["accuracy"]["cosine_mean"], r[field])) for r in records
               if r["accuracy"] is not None and r[field] is not None]
        if len(pts) < 2:
            fronts[name] = []
            continue
        idx = pareto_front([p for _, p in pts], (True, maximize))
        on = {id(pts[i][0]) for i in idx}
        for r, _ in pts:
            r["pareto"][name] = id(r) in on
        fronts[name] = [pts[i][0]["name"] for i in idx]
    return fronts
