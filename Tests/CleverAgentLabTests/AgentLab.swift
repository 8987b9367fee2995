import CleverCampaign

/// The lab tests drive the same lab harness as the fault campaign (`clevervm lab campaign`).
typealias AgentLab = CampaignLab
