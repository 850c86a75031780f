"""Array layout shared by every market kernel (NumPy reference, numba, Cython).

This module is part of the kernel layer: it imports nothing from the market
definitions, scenarios or CLI. The definitions layer imports these names to pack
inputs; the Cython twin (``ext/_market.pyx``) repeats the indices as an enum and
``tests/test_market_kernels.py`` checks that both agree (``_market.layout()``).

Arrays
------
``x``  : (n_draws, N_INPUTS) float64, C-contiguous, one row per draw, canonical units.
``yp`` : (n_years, N_YEAR_PARAMS) float64, per-year deterministic roadmap values.
``out``: (n_draws, N_OUTPUTS, n_years) float64; series index ``s = o * n_years + t``.

Streaming histogram
-------------------
Values are binned by the top bits of their IEEE-754 float64 representation: the
11 exponent bits and the leading ``HIST_MANTISSA_BITS`` mantissa bits (the layout
of HDR histograms, Tene 2012; log-linear bins). Every binade ``[2^e, 2^(e+1))`` is
split into ``2^HIST_MANTISSA_BITS`` equal bins, so a bin's width is at most
``2^-HIST_MANTISSA_BITS`` of any value in it (0.78 % for 7 bits). Magnitudes below
``2^HIST_EXP_MIN`` fall in the zero bin; magnitudes at or above ``2^HIST_EXP_MAX``
are clamped into the outermost bins (and counted in ``clamped``). Negative values
mirror positive ones below the zero bin.
"""

INPUT_NAMES = (
    "tokens_per_day_base",          # 0  [tokens/day] output tokens served, all providers, base year
    "demand_growth_initial",        # 1  [1/yr] demand multiple in the first forecast year (at constant price)
    "demand_growth_decay",          # 2  [1] fraction of excess growth kept each later year
    "price_per_mtok_base",          # 3  [USD/1e6 tokens] blended price, base year
    "price_decline_initial",        # 4  [1/yr] price divisor in the first forecast year
    "price_decline_decay",          # 5  [1] fraction of excess decline kept each later year
    "price_elasticity",             # 6  [1] demand elasticity to price (d ln Q / -d ln P)
    "reasoning_share_max",          # 7  [1] long-run share of queries answered by reasoning models
    "reasoning_midpoint_year",      # 8  [yr] year the reasoning share reaches half its maximum
    "reasoning_adoption_rate",      # 9  [1/yr] logistic rate of reasoning adoption
    "reasoning_token_multiplier",   # 10 [1] output tokens of a reasoning answer / a plain answer
    "agent_share_max",              # 11 [1] long-run share of tasks run as agents
    "agent_midpoint_year",          # 12 [yr]
    "agent_adoption_rate",          # 13 [1/yr]
    "agent_calls_per_task",         # 14 [1] model calls per agentic task
    "serving_efficiency",           # 15 [1] achieved / roofline throughput of a serving replica
    "serving_utilisation",          # 16 [1] average / provisioned serving capacity
    "software_gain_per_year",       # 17 [1/yr] serving throughput multiple from software, per year
    "hardware_gain_per_year",       # 18 [1/yr] per-chip performance multiple per year after the roadmap
    "peak_to_average",              # 19 [1] provisioned peak / average demand
    "other_inference_chips_base",   # 20 [chips] non-LLM AI inference fleet, base year, base-year chips
    "other_inference_growth",       # 21 [1/yr]
    "frontier_runs_base",           # 22 [runs/yr]
    "frontier_runs_growth",         # 23 [1/yr]
    "compute_per_run_base",         # 24 [FLOP] pre-training compute of a frontier run, base year
    "compute_per_run_growth",       # 25 [1/yr] growth of compute per run in the first forecast year
    "compute_growth_decay",         # 26 [1] fraction of the excess compute growth kept each later year
    "post_training_multiplier",     # 27 [1] all training-side compute / frontier pre-training compute
    "training_utilisation",         # 28 [1] achieved model FLOP utilisation of the training fleet
    "accelerator_price_factor",     # 29 [1] multiplier on the roadmap accelerator price
    "useful_life_years",            # 30 [yr]
    "prior_fleet_growth",           # 31 [1] installed capacity growth into the base year
    "pue",                          # 32 [1] power usage effectiveness
    "electricity_price_usd_per_kwh",  # 33 [USD/kWh]
    "share_nvidia_start",           # 34 [1] vendor weight, first year (normalised per draw)
    "share_nvidia_end",             # 35 [1] vendor weight, last year
    "share_amd_start",              # 36
    "share_amd_end",                # 37
    "share_hyperscaler_asic_start",  # 38
    "share_hyperscaler_asic_end",   # 39
    "share_inference_startups_start",  # 40
    "share_inference_startups_end",  # 41
    "spend_ceiling_usd",            # 42 [USD/yr] asymptotic ceiling on annual accelerator spend (all buyers)
    "software_gain_decay",          # 43 [1] fraction of the excess software gain kept each later year
    "price_markup_max",             # 44 [1] largest sustainable price / serving cost (accelerator + power)
)
N_INPUTS = len(INPUT_NAMES)
VENDORS = ("nvidia", "amd", "hyperscaler_asic", "inference_startups")

YEAR_PARAM_NAMES = (
    "year",                          # 0 [yr]
    "throughput_tokens_per_s_per_chip",  # 1 [tokens/s/chip] roofline, reference model on the serving chip
    "peak_flops_per_chip",           # 2 [FLOP/s] dense BF16 peak of the year's accelerator
    "accelerator_price_usd",         # 3 [USD/chip]
    "accelerator_power_w",           # 4 [W/chip]
    "years_beyond_roadmap",          # 5 [yr] 0 inside the roadmap, then 1, 2, ...
)
N_YEAR_PARAMS = len(YEAR_PARAM_NAMES)

OUTPUT_NAMES = (
    "tokens_per_day",                # 0  [tokens/day] served (demand capped by the installed fleet)
    "price_per_mtok_usd",            # 1  [USD/1e6 tokens]
    "serving_cost_per_mtok_usd",     # 2  [USD/1e6 tokens]
    "llm_revenue_usd",               # 3  [USD/yr]
    "inference_compute_flops",       # 4  [FLOP/s] installed peak compute in use for inference
    "training_compute_flop",         # 5  [FLOP/yr] achieved training compute
    "inference_share_compute",       # 6  [1]
    "accelerators_installed",        # 7  [chips]
    "accelerators_shipped",          # 8  [chips/yr]
    "power_gw",                      # 9  [GW]
    "spend_inference_usd",           # 10 [USD/yr]
    "spend_training_usd",            # 11 [USD/yr]
    "spend_total_usd",               # 12 [USD/yr]
    "inference_share_spend",         # 13 [1]
    "revenue_nvidia_usd",            # 14 [USD/yr]
    "revenue_amd_usd",               # 15 [USD/yr]
    "revenue_hyperscaler_asic_usd",  # 16 [USD/yr]
    "revenue_inference_startups_usd",  # 17 [USD/yr]
)
N_OUTPUTS = len(OUTPUT_NAMES)

#: Seconds in a Julian year [s].
SECONDS_PER_YEAR = 31_557_600.0
SECONDS_PER_DAY = 86_400.0
#: Joules per kWh [J/kWh].
JOULES_PER_KWH = 3.6e6

HIST_MANTISSA_BITS = 7
HIST_EXP_MIN = -128
HIST_EXP_MAX = 128
HIST_SHIFT = 52 - HIST_MANTISSA_BITS
HIST_KEY_LO = (1023 + HIST_EXP_MIN) << HIST_MANTISSA_BITS
HIST_KEY_HI = (1023 + HIST_EXP_MAX) << HIST_MANTISSA_BITS
HIST_HALF = HIST_KEY_HI - HIST_KEY_LO
HIST_ZERO = HIST_HALF
HIST_BINS = 2 * HIST_HALF + 1
ABS_MASK = 0x7FFFFFFFFFFFFFFF

EVENT_GT = 0
EVENT_LT = 1
