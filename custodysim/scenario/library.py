"""The library: named attack techniques and controls, each with documented default values and sources.

A scenario names a technique (``technique: session_cookie_theft``) and may leave out the numbers the
library knows: an access edge's ``p_success`` and ``time_days``, an initial access's ``delay_days``; a
person's exposure or insider rate may say ``default``. A scenario switches on a control with
``controls.measures.<name>`` and may override any of its parameters (see :mod:`custodysim.scenario.measures`).

Every default is a central estimate for a capable, targeted attacker (DPRK-style), not a fact: each entry
says where it comes from, its plausible range (``low`` to ``high``) and how uncertain it is. The ranges are
what a sensitivity analysis should vary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Stage = Literal["initial_access", "movement", "insider", "behaviour", "prevention", "detection", "response",
                "limitation"]

DEFAULT = "default"
"""The word that asks for the library's value where a scenario would give a number."""

Scheme = Literal["attack", "d3fend", "ccss"]
"""A catalogue whose identifiers the library cites: MITRE ATT&CK, MITRE D3FEND, CCSS."""
SCHEMES: tuple[Scheme, ...] = ("attack", "d3fend", "ccss")
Catalogue = Literal["fair_cam", "attack", "d3fend", "ccss"]
"""Where an entry is known: the FAIR-CAM model, or a catalogue of identifiers."""

FairCam = Literal["avoidance", "deterrence", "resistance", "visibility", "monitoring", "recognition",
                  "termination", "resilience", "loss minimization"]
"""A FAIR-CAM loss-event control function."""

FAIR_CAM_DOMAINS: dict[FairCam, str] = {
    "avoidance": "prevention", "deterrence": "prevention", "resistance": "prevention",
    "visibility": "detection", "monitoring": "detection", "recognition": "detection",
    "termination": "response", "resilience": "response", "loss minimization": "response",
}
"""The loss-event domain (prevention, detection, response) of each FAIR-CAM function."""

RELEASES: dict[Catalogue, str] = {
    "attack": "MITRE ATT&CK Enterprise v18.1",
    "d3fend": "MITRE D3FEND 1.2.0",
    "ccss": "CCSS, C4's GitHub edition of 10 Oct 2021",
    "fair_cam": "FAIR-CAM Standard Artifact v1.0",
}
"""The release every identifier was checked against (docs/library.md, 'Identifiers', says where each is)."""

CATALOGUE_TITLES: dict[Catalogue, str] = {
    "fair_cam": "FAIR-CAM", "attack": "ATT&CK", "d3fend": "D3FEND", "ccss": "CCSS"}
"""The short name of each catalogue, in the order an entry lists them."""


@dataclass(frozen=True)
class Identifier:
    """An identifier another tool knows, with its name in the release of :data:`RELEASES` it was checked against.

    Attributes:
        scheme: the catalogue (``attack``, ``d3fend``, ``ccss``).
        id: the identifier as the catalogue writes it: ``T1539``, ``D3-MFA``, ``1.4.6``.
        name: its name there: ``Steal Web Session Cookie``.
    """

    scheme: Scheme
    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


def _attack(*pairs: tuple[str, str]) -> tuple[Identifier, ...]:
    return tuple(Identifier("attack", i, n) for i, n in pairs)


def _d3fend(i: str, n: str) -> Identifier:
    return Identifier("d3fend", i, n)


def _ccss(i: str, n: str) -> Identifier:
    return Identifier("ccss", i, n)


@dataclass(frozen=True)
class Prior:
    """A default value of one field, with its plausible range.

    Attributes:
        field: the scenario field it fills (``exposure``, ``p_success``, ``time_days``, ``factor``, ...).
        value: the default, a number or a distribution as a scenario writes it (``{dist: lognormal, ...}``).
        low: the low end of the plausible range (for a distribution, of its median).
        high: the high end.
        unit: what the number counts.
    """

    field: str
    value: float | dict[str, Any]
    low: float
    high: float
    unit: str

    @property
    def central(self) -> float:
        """Return the number the range is about: the value, or a distribution's median or mean."""
        if isinstance(self.value, dict):
            for key in ("median", "mean", "value"):
                if key in self.value:
                    return float(self.value[key])
            raise ValueError(f"{self.field}: a default distribution needs a median, mean or value")
        return float(self.value)


@dataclass(frozen=True)
class Entry:
    """One technique or control of the library."""

    name: str
    stage: Stage
    summary: str
    in_the_model: str
    priors: tuple[Prior, ...]
    rationale: str
    uncertainty: Literal["low", "medium", "high"]
    sources: tuple[str, ...]
    social_engineering: bool = False
    identifiers: tuple[Identifier, ...] = ()
    fair_cam: tuple[FairCam, ...] = ()

    def prior(self, field: str) -> Prior | None:
        """Return the default of ``field``, if the entry has one."""
        return next((p for p in self.priors if p.field == field), None)

    def default(self, field: str) -> Any:
        """Return the default value of ``field`` (KeyError if the entry has none)."""
        prior = self.prior(field)
        if prior is None:
            raise KeyError(f"{self.name} has no default for {field!r}")
        return prior.value

    def cited(self, scheme: Scheme) -> tuple[Identifier, ...]:
        """Return the entry's identifiers in ``scheme``."""
        return tuple(i for i in self.identifiers if i.scheme == scheme)

    @property
    def is_technique(self) -> bool:
        """Whether the entry is an attack technique (else a control, or how attackers and people behave)."""
        return self.stage in ("initial_access", "movement", "insider")

    @property
    def kind(self) -> str:
        """Return ``technique``, ``behaviour`` or ``control``."""
        return "technique" if self.is_technique else "behaviour" if self.stage == "behaviour" else "control"


def _lognormal(median: float, p90: float) -> dict[str, Any]:
    return {"dist": "lognormal", "median": median, "p90": p90}


_INCIDENTS = "docs/sources.md, 'Incidents' (DMM 2024, Coincheck 2018, Ronin 2022, CoinsPaid 2023 timelines)"
_SESSIONS = "docs/sources.md, 'What the incidents teach about controls': sessions are keys"
_LESSONS = "docs/sources.md, 'What the incidents teach about controls'"
_FBI_DMM = "FBI / DC3 / NPA statement on the DMM Bitcoin theft, 23 Dec 2024"
_CISA_TT = "CISA/FBI/Treasury advisory AA22-108A, TraderTraitor (Apr 2022)"
_RONIN = "Ronin Network post-mortem, 'Back to Building: Ronin Security Breach Post-Mortem' (Apr 2022)"
_MTRENDS = "Mandiant M-Trends 2023-2025: median dwell time 16, 10 and 11 days across all intrusions"
_DBIR = "Verizon DBIR 2024, social engineering: simulated phishing, who clicks and how fast (under a minute)"
_GOOGLE_MFA = ("Google Security Blog, 'New research: How effective is basic account hygiene at preventing "
               "hijacking' (May 2019): security keys stopped all bulk and targeted phishing in the study")
_CHAINALYSIS = "Chainalysis, 2025 Crypto Crime report: 2024 thefts, private-key compromises 43.8% of value"
_CONTROLS = ("docs/sources.md, 'How custody controls behave' (Fireblocks TAP, BitGo policies, Safe guards and "
             "delay modifier, Revault, CCSS)")
_BYBIT = ("FBI public service announcement I-022625-PSA, 'North Korea Responsible for $1.5 Billion Bybit Hack' "
          "(26 Feb 2025), https://www.ic3.gov/PSA/2025/PSA250226; Safe{Wallet} and Sygnia statements on the "
          "compromised developer machine (26 Feb 2025): compromised 4 Feb, one rewritten cold-wallet transfer 21 Feb")
_WAZIRX = ("WazirX, 'Cyber attack on WazirX multisig wallet: preliminary report' (Jul 2024): six signers "
           "approved one rewritten transaction of the exchange's largest multisig")
_THERP = ("Swain and Guttmann, NUREG/CR-1278, 'Handbook of Human Reliability Analysis' (US NRC, 1983), "
          "chapter 10, dependence between people's errors: https://www.nrc.gov/reading-rm/doc-collections/"
          "nuregs/contract/cr1278/index.html")
_LAIN = ("Lain, Kostiainen and Capkun, 'Phishing in Organizations: Findings from a Large-Scale and Long-Term "
         "Study', IEEE S&P 2022, https://arxiv.org/abs/2112.07498: click rates vary several-fold from one "
         "phishing e-mail to another")
_GDPR33 = ("GDPR article 33: a personal-data breach is notified within 72 hours, https://gdpr-info.eu/art-33-gdpr/; "
           "the usual clause of vendor contracts")
_COINBASE = ("Coinbase Global, Form 8-K (14 May 2025): overseas support contractors bribed to pass internal "
             "access and data to criminals")

ENTRIES: tuple[Entry, ...] = (
    # ---- initial access -------------------------------------------------------------------------------
    Entry(
        "fake_recruiter_test", "initial_access",
        "A fake recruiter (LinkedIn, Telegram) sends an engineer a 'coding test' or take-home project that "
        "runs the attacker's code on the engineer's machine.",
        "Each targeted person falls with their exposure, after delay_days; their devices fall with them.",
        (Prior("exposure", 0.15, 0.05, 0.30, "probability per targeted person per campaign"),
         Prior("delay_days", _lognormal(14, 45), 5, 30, "days of recruiter rapport before the test")),
        "The DMM vendor engineer and the Ronin engineer both ran the attacker's file; campaigns target a "
        "handful of people and usually succeed with one. 0.15 per person is mid-range for engineers who "
        "are open to offers; it is far lower for people who are not.",
        "high", (_FBI_DMM, _CISA_TT, _INCIDENTS), social_engineering=True,
        identifiers=_attack(("T1566.003", "Spearphishing via Service"), ("T1204.002", "Malicious File"))),
    Entry(
        "fake_job_offer", "initial_access",
        "A job offer document (PDF) with an exploit or macro, after several rounds of fake interviews.",
        "As fake_recruiter_test: the targeted person falls with their exposure after delay_days.",
        (Prior("exposure", 0.12, 0.03, 0.30, "probability per targeted person per campaign"),
         Prior("delay_days", _lognormal(21, 60), 7, 45, "days of interviews before the offer")),
        "Ronin 2022: a senior engineer was approached through LinkedIn, interviewed several times and "
        "opened the offer PDF. Slightly below the coding test: a document needs an exploit or a macro.",
        "high", (_RONIN, _CISA_TT), social_engineering=True,
        identifiers=_attack(("T1566.003", "Spearphishing via Service"), ("T1204.002", "Malicious File"))),
    Entry(
        "spear_phishing", "initial_access",
        "Targeted e-mails with malware (attachment or link) to employees, as in Coincheck 2018.",
        "Each targeted person falls with their exposure after delay_days; their devices fall with them.",
        (Prior("exposure", 0.05, 0.01, 0.15, "probability per targeted person per campaign"),
         Prior("delay_days", _lognormal(7, 30), 2, 20, "days from the first mail to the infection")),
        "In phishing simulations a minority of users click, and quickly; a lure tailored to a named person "
        "does better, but the payload must also beat the mail filter and the endpoint. Coincheck's malware sat "
        "on employee PCs for weeks before the theft.",
        "medium", (_DBIR, _INCIDENTS), social_engineering=True,
        identifiers=_attack(("T1566.001", "Spearphishing Attachment"), ("T1566.002", "Spearphishing Link"))),
    Entry(
        "malicious_dependency", "initial_access",
        "A poisoned open-source package or build step pulled by an engineer's machine or the CI pipeline.",
        "Target the engineers (or the build pipeline's owner) who install dependencies; exposure is the "
        "chance the poisoned package reaches them in a campaign.",
        (Prior("exposure", 0.02, 0.005, 0.10, "probability per targeted person per campaign"),
         Prior("delay_days", _lognormal(30, 120), 7, 90, "days until the package is pulled")),
        "Package-registry campaigns by DPRK groups are frequent but spray-and-pray; reaching one "
        "particular exchange's engineers in a year is far less likely than a targeted lure.",
        "high", (_CISA_TT, _CHAINALYSIS),
        identifiers=_attack(("T1195.001", "Compromise Software Dependencies and Development Tools"))),
    Entry(
        "vendor_supply_chain", "initial_access",
        "The attacker compromises the vendor of a signing interface or wallet software and ships or serves "
        "a tampered version to its customers.",
        "Target the vendor's staff who can change what the interface shows; model the interface as a "
        "pipeline component reachable from them.",
        (Prior("exposure", 0.05, 0.01, 0.20, "probability per targeted vendor engineer per campaign"),
         Prior("delay_days", _lognormal(30, 90), 10, 60, "days until the vendor's release or session is used")),
        "DMM 2024 and the 2025 Bybit theft both went through a vendor's systems. The exposure is that of "
        "the vendor's people; their number and exposure dominate.",
        "high", (_FBI_DMM, _INCIDENTS),
        identifiers=_attack(("T1195.002", "Compromise Software Supply Chain"), ("T1199", "Trusted Relationship"))),
    Entry(
        "insider", "insider",
        "A person with keys or approval power steals, alone, under the same policies as anyone.",
        "people.<id>.insider_rate_per_year: default gives the rate below; the act is immediate.",
        (Prior("insider_rate_per_year", 0.002, 0.0005, 0.01, "thefts per privileged person per year"),),
        "Insider thefts at exchanges are rare next to external ones in public reporting; 1 in 500 per "
        "privileged person a year is a cautious order of magnitude, not a measured rate.",
        "high", (_CHAINALYSIS,),
        identifiers=_attack(("T1078", "Valid Accounts"))),
    Entry(
        "insider_door", "insider",
        "An insider opens a door for an outside campaign: a firewall change, a shared credential, a planted "
        "device.",
        "An access edge with opened_by: PERSON exists only once that person (insider_rate_per_year) has "
        "acted in the trial; a campaign holding the edge's from-node tries it then (or when it takes the "
        "node, if later), with p_success after time_days.",
        (Prior("p_success", 0.9, 0.6, 1.0, "probability the opened door lets the campaign through"),
         Prior("time_days", _lognormal(1, 7), 0.5, 5, "days from the door opening (or the foothold) to its use")),
        "A door opened from inside is made to be used: the outsider needs only to walk through, soon. Bribed "
        "contractors at an exchange passed access to criminals in 2025.",
        "high", (_COINBASE,),
        identifiers=_attack(("T1078", "Valid Accounts"), ("T1562.004", "Disable or Modify System Firewall"),
                            ("T1200", "Hardware Additions"))),
    # ---- attacker and people behaviour -----------------------------------------------------------------
    Entry(
        "patient_strike", "behaviour",
        "How a state attacker strikes: it waits inside the signing path, aims at the most valuable wallet it "
        "can reach, fires once when it holds every signer's view or key the strike needs, and gives up "
        "waiting after max_wait_days.",
        "threats.<id>.strike: aim largest, wait_until_ready true, max_wait_days below, after_max_wait fire, "
        "once true (the defaults of every threat). A scenario may aim at the first wallet that moves, or at "
        "named wallets, and let the campaign strike again.",
        (Prior("max_wait_days", 60.0, 14.0, 180.0, "days a campaign waits from its first chance to strike"),),
        "DMM 2024: about two weeks from the session hijack to one rewritten transfer of the main wallet. "
        "Bybit 2025: 17 days from the developer's machine to one rewritten transfer of the cold wallet, "
        "the largest. WazirX 2024: one transaction of the largest multisig. In each the attacker struck "
        "once, at the largest wallet, when the signers' screens were all its own. 60 days covers these "
        "waits with room; the range runs from the observed two weeks to the months of Ronin 2022.",
        "medium", (_FBI_DMM, _BYBIT, _WAZIRX, _RONIN)),
    Entry(
        "verification_common_mode", "behaviour",
        "Signers who check one transaction are not independent: they read the same convincing screen, under "
        "the same routine and training, and tend to miss it together.",
        "controls.verification.common_mode: with this probability one shared draw decides every verifying "
        "signer's check of a transaction (each catches if it falls below their verification_probability); "
        "otherwise each checks with a draw of their own. 0 is independence, 1 complete dependence.",
        (Prior("common_mode", 0.5, 0.14, 1.0, "share of checks decided together"),),
        "Human-reliability analysis (THERP) models dependence between two people's errors at five levels; "
        "for people doing the same task together, close in time, it assigns high dependence, a conditional "
        "failure of (1 + q) / 2 for a lone miss probability q. A common-mode share of 0.5 gives exactly that "
        "(moderate dependence is 1/7 = 0.14, complete is 1). In every signing-path theft on record the "
        "signers failed together.",
        "high", (_THERP, _BYBIT, _WAZIRX)),
    Entry(
        "lure_common_mode", "behaviour",
        "A lure sent to a team is not a separate coin flip per person: a convincing one fools several, a "
        "clumsy one fools nobody.",
        "threats.<id>.initial_access[].common_mode: with this probability one shared draw decides whether "
        "each target falls (each falls if it is below their exposure); otherwise each falls on their own.",
        (Prior("common_mode", 0.3, 0.1, 0.6, "share of a lure's targets decided together"),),
        "In a 15-month study of 14,000 employees, click rates differed several-fold from one phishing "
        "e-mail to another: much of who falls is the lure, not the person. A share of 0.3 makes that "
        "visible without claiming more than the data support; the range is wide.",
        "high", (_LAIN, _DBIR)),
    Entry(
        "organisation_notification", "behaviour",
        "After an alarm, another organisation (a vendor, the exchange when a vendor raised it) is told, and "
        "acts only then, and may not find the attacker's footholds in its systems.",
        "organisations.<id>.notified: after_hours from an alarm on a campaign until the organisation "
        "is told (it then responds as to an alarm of its own), and finds_probability that its response finds "
        "and revokes the footholds it holds. notified: null means it is never told.",
        (Prior("after_hours", _lognormal(72, 336), 24, 720, "hours until the organisation is told (median)"),
         Prior("finds_probability", 0.5, 0.2, 0.9, "probability it finds the footholds in its systems")),
        "72 hours is the usual clause of vendor contracts and the breach-notification norm; after Bybit 2025 "
        "the wallet vendor confirmed its compromised machine five days after the theft. A vendor told only "
        "that 'something happened' often finds part of an intrusion, or none of it.",
        "high", (_GDPR33, _BYBIT)),
    # ---- movement ---------------------------------------------------------------------------------------
    Entry(
        "session_cookie_theft", "movement",
        "Session cookies or tokens stolen from a compromised machine are replayed to enter a SaaS or "
        "communication system, walking past passwords and MFA.",
        "An access edge: tried once from the compromised node, works with p_success after time_days.",
        (Prior("p_success", 0.7, 0.4, 0.9, "probability the stolen session opens the target"),
         Prior("time_days", _lognormal(30, 90), 3, 60, "days from the foothold to the use")),
        "DMM: about 7 weeks from the coding test to the session hijack. Long-lived sessions without device "
        "binding make it likely; device-bound sessions (a control below) make it rare.",
        "medium", (_FBI_DMM, _SESSIONS),
        identifiers=_attack(("T1539", "Steal Web Session Cookie"), ("T1550.004", "Web Session Cookie"))),
    Entry(
        "credential_reuse", "movement",
        "Passwords or keys found on a compromised machine (files, password stores, shell history) open "
        "another system.",
        "An access edge, as above.",
        (Prior("p_success", 0.3, 0.1, 0.6, "probability the credentials open the target"),
         Prior("time_days", _lognormal(10, 40), 2, 30, "days to find and use them")),
        "Works where MFA is absent or phishable; reported in most exchange intrusions as one of the steps.",
        "medium", (_CISA_TT, _MTRENDS),
        identifiers=_attack(("T1552.001", "Credentials In Files"), ("T1555", "Credentials from Password Stores"),
                            ("T1552.003", "Shell History"), ("T1078", "Valid Accounts"))),
    Entry(
        "cloud_console_takeover", "movement",
        "The attacker takes over a cloud console or CI/CD account and from there the servers or secrets "
        "it manages.",
        "An access edge, as above.",
        (Prior("p_success", 0.4, 0.15, 0.7, "probability of taking over the console"),
         Prior("time_days", _lognormal(14, 45), 3, 30, "days to get there")),
        "A vendor's cloud sessions were hijacked after the attackers failed to enrol their own MFA device; "
        "consoles hold the keys to many servers at once.",
        "high", (_LESSONS, _CISA_TT),
        identifiers=_attack(("T1078.004", "Cloud Accounts"))),
    Entry(
        "key_store_from_host", "movement",
        "From a server that holds or can use a key store (hot wallet server, HSM client), the attacker "
        "reads the key or has the HSM sign.",
        "An access edge from the host to the key store; a non-exportable HSM signs only while reached.",
        (Prior("p_success", 0.8, 0.5, 1.0, "probability of using the keys once on the host"),
         Prior("time_days", _lognormal(3, 14), 0.5, 10, "days to find and use them")),
        "Coincheck's NEM key sat on a networked server; keys encrypted on their own host were decrypted "
        "there in several thefts.",
        "medium", (_INCIDENTS, _LESSONS),
        identifiers=_attack(("T1552.004", "Private Keys"))),
    Entry(
        "lateral_movement", "movement",
        "Generic movement between machines of one network (remote services, stolen admin credentials).",
        "An access edge, as above.",
        (Prior("p_success", 0.4, 0.1, 0.8, "probability of reaching the target"),
         Prior("time_days", _lognormal(14, 45), 3, 40, "days to get there")),
        "Intrusion dwell times run from days to months; M-Trends medians of 10-16 days are for detected "
        "intrusions of every kind, so a quiet, targeted move takes longer.",
        "high", (_MTRENDS,),
        identifiers=_attack(("T1021", "Remote Services"), ("T1078", "Valid Accounts"))),
    # ---- controls ---------------------------------------------------------------------------------------
    Entry(
        "security_awareness_training", "prevention",
        "Training and phishing drills for staff and contractors (the vendor's too), focused on recruiter "
        "and job-offer lures.",
        "Multiplies the exposure of the people it covers (people, organisations, or everyone) to every "
        "social-engineering technique by factor.",
        (Prior("factor", 0.6, 0.4, 0.85, "multiplier of exposure"),),
        "Drills lower click rates in simulations, but a patient recruiter aims at curiosity and ambition, "
        "not at a careless click: a modest cut, uncertain.",
        "high", (_DBIR, _CISA_TT),
        fair_cam=("resistance",)),
    Entry(
        "phishing_resistant_mfa", "prevention",
        "FIDO2 security keys or passkeys on every account that can reach a system in the signing path.",
        "Multiplies p_success of credential_reuse and cloud_console_takeover edges (into the systems "
        "listed, or all) by factor.",
        (Prior("factor", 0.1, 0.02, 0.3, "multiplier of p_success"),),
        "Security keys stopped all phishing in Google's study; what remains is session theft (see "
        "device_bound_sessions) and accounts left out of the rollout.",
        "medium", (_GOOGLE_MFA,),
        fair_cam=("resistance",),
        identifiers=(_d3fend("D3-MFA", "Multi-factor Authentication"),
                     _ccss("1.4.1", "Key access requires user/pass/nth factor"))),
    Entry(
        "device_bound_sessions", "prevention",
        "Short-lived sessions bound to the device (token binding, re-authentication for sensitive actions), "
        "so a stolen cookie does not work elsewhere.",
        "Multiplies p_success of session_cookie_theft edges (into the systems listed, or all) by factor.",
        (Prior("factor", 0.2, 0.05, 0.5, "multiplier of p_success"),),
        "The DMM path needed a long-lived session replayed from elsewhere; binding and short lifetimes "
        "close most of it, but an attacker on the device itself can still ride the session.",
        "medium", (_FBI_DMM, _SESSIONS),
        fair_cam=("resistance",), identifiers=(_d3fend("D3-TB", "Token Binding"),)),
    Entry(
        "segregated_vendor_access", "prevention",
        "Vendor and contractor staff reach the exchange's signing path only through separate, monitored "
        "access (jump hosts, privileged workstations), never from their everyday machines.",
        "Multiplies p_success of edges from a vendor's people and systems (organisations listed, or every "
        "organisation that is not the exchange) into key stores, pipeline components, requesters and the "
        "exchange's systems by factor.",
        (Prior("factor", 0.3, 0.1, 0.6, "multiplier of p_success"),),
        "Every vendor-borne theft (DMM, Ronin's delegation) crossed from a vendor's everyday environment "
        "into the signing path; segregation makes that crossing much harder but not impossible.",
        "high", (_FBI_DMM, _RONIN),
        fair_cam=("resistance",), identifiers=(_d3fend("D3-NAM", "Network Access Mediation"),)),
    Entry(
        "endpoint_detection", "detection",
        "EDR on the listed machines, with a team that reads its alerts.",
        "A detection control on the watched nodes: a compromise is detected after time_to_detect_days.",
        (Prior("time_to_detect_days", {"dist": "exponential", "mean": 60}, 20, 200,
               "days from compromise to detection (mean)"),),
        "M-Trends medians of 10-16 days are for intrusions that were detected; a script an engineer ran "
        "himself often goes unnoticed for months, so the mean here is much longer.",
        "high", (_MTRENDS, _INCIDENTS),
        fair_cam=("monitoring", "recognition"), identifiers=(_d3fend("D3-PA", "Process Analysis"),)),
    Entry(
        "outflow_monitoring", "detection",
        "Monitoring of the exchange's outflows (on-chain and internal) that raises an alarm on unusual "
        "transfers.",
        "Catches each theft transfer of the wallets listed (or all) with probability, after delay_hours; a "
        "delayed transfer can be cancelled in time, a broadcast one cannot.",
        (Prior("probability", 0.9, 0.7, 0.99, "probability a theft transfer is noticed"),
         Prior("delay_hours", _lognormal(0.3, 2), 0.1, 6, "hours to notice")),
        "DMM noticed within minutes, Binance's alarms fired after execution; Ronin noticed after 6 days "
        "because nobody watched the bridge's balance.",
        "low", (_INCIDENTS,),
        fair_cam=("monitoring", "recognition")),
    Entry(
        "balance_alerts", "detection",
        "Alerts when a wallet's balance drops below a threshold or falls fast.",
        "Like outflow monitoring, for transfers above min_amount_usd: slower, but hard to miss.",
        (Prior("probability", 0.98, 0.9, 1.0, "probability a large drop raises an alert"),
         Prior("delay_hours", _lognormal(1, 6), 0.25, 12, "hours to act on the alert")),
        "Coincheck noticed about 11 hours after the first transfer; a balance alert with a person on call "
        "answers within hours.",
        "medium", (_INCIDENTS,),
        fair_cam=("monitoring", "recognition")),
    Entry(
        "independent_verification", "prevention",
        "Signers check each transaction against the original request on a device of their own (hardware "
        "wallet screen, separate channel) before approving.",
        "Each listed person verifies on the given device; a mismatch is caught with probability (a veto "
        "that raises the alarm).",
        (Prior("probability", 0.9, 0.7, 0.99, "probability a signer catches a rewritten transfer"),),
        "A careful signer comparing address and amount on a trusted screen catches nearly every rewrite; "
        "fatigue, long addresses and blind signing of contract calls lower it.",
        "medium", (_CONTROLS, "CCSS: spends verified before signing"),
        fair_cam=("resistance", "recognition"),
        identifiers=(_ccss("1.4.6", "Spends are verified before signing"),)),
    Entry(
        "independent_policy_engine", "limitation",
        "A policy engine outside the vendor's and the signing interface's systems (an HSM policy, a "
        "co-signer, an on-chain guard) enforces a destination whitelist and limits.",
        "Adds to each listed wallet a whitelist (and the per-transfer and daily limits given) enforced by "
        "enforced_by; it binds while that component is not the attacker's.",
        (),
        "No default number: the whitelist is exact, the limits are the exchange's choice. Its worth comes "
        "from where it runs: it binds only while its enforcer is not the attacker's (docs/model.md, 'Policies').",
        "low", (_CONTROLS,),
        fair_cam=("resistance", "loss minimization"),
        identifiers=(_ccss("1.4.6", "Spends are verified before signing"),)),
    Entry(
        "time_delay_with_cancellation", "response",
        "Every transfer of the listed wallets waits a delay during which anyone with authority can cancel.",
        "Adds a time lock of hours to each listed wallet, enforced by enforced_by.",
        (Prior("hours", 24.0, 6.0, 72.0, "hours every transfer waits"),),
        "The Safe delay module's default cooldown is 24 hours; vault designs use hours to days. It only "
        "helps where detection plus the response's freeze come before the lock runs out (docs/model.md, "
        "'Policies').",
        "low", (_CONTROLS,),
        fair_cam=("termination",)),
    Entry(
        "wallet_splitting", "limitation",
        "A large wallet's funds spread over several equal wallets, its routine transfers rotating between "
        "them, so that one rewritten or stolen transfer reaches one part.",
        "Each listed wallet becomes `parts` wallets (the first keeps its id, the others are <id>_2, <id>_3, "
        "...) with equal balances and the same custody, pipeline and policy; each scheduled transfer out of "
        "it rotates between the parts (every part every parts x every_days). Parts that share keys or a "
        "signing interface are still each reachable: splitting caps what one transfer takes, and the alarm "
        "after it freezes the rest.",
        (Prior("parts", 5, 2, 10, "wallets the funds are split over"),),
        "A design choice rather than an estimate: five parts is the bundled DMM variant. The loss of one "
        "theft falls roughly as 1/parts; more parts mean more wallets to reconcile and more signing.",
        "low", (_CONTROLS, "Swambo et al., 'Custody protocols using Bitcoin vaults' (2020)"),
        fair_cam=("loss minimization",)),
)

_BY_NAME = {e.name: e for e in ENTRIES}


def entry(name: str) -> Entry | None:
    """Return the library entry called ``name``, if there is one."""
    return _BY_NAME.get(name)


def techniques() -> list[str]:
    """Return the names of the library's attack techniques."""
    return [e.name for e in ENTRIES if e.is_technique]


def default_of(name: str, field: str) -> Any:
    """Return the default of ``field`` for the library entry ``name`` (KeyError if either is unknown)."""
    found = _BY_NAME.get(name)
    if found is None:
        raise KeyError(name)
    return found.default(field)


def shown(value: float | dict[str, Any]) -> str:
    """Return a default as a person reads it: ``0.15``, ``lognormal, median 14, p90 45``."""
    if not isinstance(value, dict):
        return f"{value:g}"
    rest = ", ".join(f"{k} {v:g}" for k, v in value.items() if k != "dist")
    return f"{value['dist']}, {rest}"


def _range(p: Prior) -> str:
    what = "median " if isinstance(p.value, dict) and "median" in p.value else (
        "mean " if isinstance(p.value, dict) else "")
    return f"{what}{p.low:g} to {p.high:g}"


STAGE_TITLES = {
    "initial_access": "Initial access", "insider": "Insider", "movement": "Movement",
    "behaviour": "Attacker and people behaviour",
    "prevention": "Controls: prevention", "detection": "Controls: detection", "response": "Controls: response",
    "limitation": "Controls: limitation",
}
"""Section titles, in the order the reference lists them (FAIR-CAM's prevention, detection, response)."""


SOURCES_NOTE = "Every source's public address, and the incident and control facts in full: docs/sources.md."


def fair_cam_text(e: Entry) -> str:
    """Return an entry's FAIR-CAM functions by domain: ``detection (monitoring, recognition)`` (empty if none)."""
    by_domain: dict[str, list[str]] = {}
    for f in e.fair_cam:
        by_domain.setdefault(FAIR_CAM_DOMAINS[f], []).append(f)
    return ", ".join(f"{domain} ({', '.join(fs)})" for domain, fs in by_domain.items())


def _attack_url(i: Identifier) -> str:
    return f"https://attack.mitre.org/techniques/{i.id.replace('.', '/')}/"


def identifier_lines(e: Entry, links: bool = False) -> list[tuple[Catalogue, str]]:
    """Return (catalogue, what the entry is there) for each catalogue that knows the entry, in catalogue order.

    The catalogue is a key of :data:`RELEASES` and :data:`CATALOGUE_TITLES`. With ``links``, ATT&CK
    identifiers are Markdown links to their page.
    """
    lines: list[tuple[Catalogue, str]] = [("fair_cam", fair_cam_text(e))] if e.fair_cam else []
    for scheme in SCHEMES:
        cited = e.cited(scheme)
        if cited:
            shown_ids = [f"[{i.id}]({_attack_url(i)}) {i.name}" if links and scheme == "attack" else str(i)
                         for i in cited]
            lines.append((scheme, "; ".join(shown_ids)))
    return lines


def identifiers_short(e: Entry) -> str:
    """Return an entry's identifiers in a few characters: ``T1539, T1550.004``; ``resistance, D3-MFA, CCSS 1.4.1``."""
    parts: list[str] = list(e.fair_cam)
    parts += [f"CCSS {i.id}" if i.scheme == "ccss" else i.id for i in e.identifiers]
    return ", ".join(parts)


STOP_CONTROLS = {"detection": "endpoint_detection", "monitoring": "outflow_monitoring",
                 "whitelist": "independent_policy_engine", "no_logic_changes": "independent_policy_engine",
                 "verification": "independent_verification"}
"""The library control each kind of stop in a run (``detection:edr``, ``whitelist:main``) is an instance of."""


def control_of(stop: str) -> Entry | None:
    """Return the library control a run's stop (``verification:dmm_signer``) is an instance of, if any.

    A monitor switched on as ``balance_alerts`` is that control; every other monitor is outflow monitoring.
    """
    kind, _, which = stop.partition(":")
    if kind == "monitoring" and which == "balance_alerts":
        return _BY_NAME["balance_alerts"]
    name = STOP_CONTROLS.get(kind)
    return _BY_NAME[name] if name else None


def markdown(only: Entry | None = None) -> str:
    """Return the library reference in Markdown: every entry, its defaults, ranges, rationale and sources.

    Args:
        only: the one entry to return (as the full reference has it, under its heading); None: all of them.
    """
    if only is not None:
        return "\n".join(_entry_markdown(only))
    lines: list[str] = []
    for stage, title in STAGE_TITLES.items():
        members = [e for e in ENTRIES if e.stage == stage]
        if not members:
            continue
        lines += [f"### {title}", ""]
        for e in members:
            lines += _entry_markdown(e)
    return "\n".join(lines)


def _entry_markdown(e: Entry) -> list[str]:
    """Return the lines of one entry in the Markdown reference, its heading first and a blank line last."""
    lines = [f"#### `{e.name}`", "", e.summary, "", f"*In the model:* {e.in_the_model}", ""]
    known = identifier_lines(e, links=True)
    if known:
        told = " · ".join(f"{CATALOGUE_TITLES[c]} {what}" for c, what in known)
        lines += [f"*Known to other tools as:* {told}", ""]
    if e.priors:
        lines += ["| field | default | plausible range | unit |", "|---|---|---|---|"]
        lines += [f"| `{p.field}` | {shown(p.value)} | {_range(p)} | {p.unit} |" for p in e.priors]
        lines.append("")
    lines += [f"*How chosen* (uncertainty: {e.uncertainty}): {e.rationale}", "", "*Sources:*", ""]
    lines += [f"- {source}" for source in e.sources]
    lines.append("")
    return lines


def describe(e: Entry) -> str:
    """Return one entry as plain text, for ``custodysim library NAME``."""
    lines = [f"{e.name} ({STAGE_TITLES[e.stage].lower()}, {e.kind})", "", e.summary, "",
             f"In the model: {e.in_the_model}", ""]
    known = identifier_lines(e)
    if known:
        lines.append("Known to other tools as (in the release named; docs/library.md, 'Identifiers'):")
        lines += [f"  {RELEASES[c]}: {what}" for c, what in known]
        lines.append("")
    if e.priors:
        lines.append("Defaults:")
        lines += [f"  {p.field}: {shown(p.value)}   (plausible {_range(p)}; {p.unit})" for p in e.priors]
        lines.append("")
    lines += [f"How chosen (uncertainty {e.uncertainty}): {e.rationale}", "", "Sources:"]
    lines += [f"  - {source}" for source in e.sources]
    lines += ["", SOURCES_NOTE]
    return "\n".join(lines)


__all__ = ["CATALOGUE_TITLES", "DEFAULT", "ENTRIES", "FAIR_CAM_DOMAINS", "RELEASES", "SCHEMES", "STAGE_TITLES",
           "STOP_CONTROLS", "Catalogue", "Entry", "FairCam", "Identifier", "Prior", "Scheme", "Stage", "control_of",
           "default_of", "describe", "entry", "fair_cam_text", "identifier_lines", "identifiers_short", "markdown",
           "shown", "techniques"]
