"""Bare-term vocabularies of the EPCIS 2.0.0 JSON-LD context, as the event hash expands them."""

# Data version: https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld (EPCIS 2.0.0, the
# context GS1 publishes with the standard). Each map sends a bare term to its web URI; a term
# missing here stays as written, as a JSON-LD processor leaves it.

from __future__ import annotations

CONTEXT_VERSION = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def _terms(base: str, terms: str) -> dict[str, str]:
    return {term: base + term for term in terms.split()}


BIZ_STEP_TERMS = _terms(
    "https://ref.gs1.org/cbv/BizStep-",
    (
        "accepting arriving assembling collecting commissioning consigning "
        "creating_class_instance cycle_counting decommissioning departing destroying "
        "disassembling dispensing encoding entering_exiting holding inspecting installing "
        "killing loading other packing picking receiving removing repackaging repairing "
        "replacing reserving retail_selling sampling sensor_reporting shipping "
        "staging_outbound stock_taking stocking storing transporting unloading unpacking "
        "void_shipping"
    ),
)
DISPOSITION_TERMS = _terms(
    "https://ref.gs1.org/cbv/Disp-",
    (
        "active available completeness_inferred completeness_verified conformant "
        "container_closed container_open damaged destroyed dispensed disposed encoded "
        "expired in_progress in_transit inactive mismatch_class mismatch_instance "
        "mismatch_quantity needs_replacement no_pedigree_match non_conformant "
        "non_sellable_other partially_dispensed recalled reserved retail_sold returned "
        "sellable_accessible sellable_not_accessible stolen unavailable unknown"
    ),
)
BIZ_TRANSACTION_TYPE_TERMS = _terms(
    "https://ref.gs1.org/cbv/BTT-",
    ("bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt"),
)
SOURCE_DEST_TYPE_TERMS = _terms(
    "https://ref.gs1.org/cbv/SDT-",
    ("location owning_party possessing_party"),
)
MEASUREMENT_TYPE_TERMS = _terms(
    "https://gs1.org/voc/",
    (
        "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Altitude "
        "AmountOfSubstance AmountOfSubstancePerUnitVolume Angle AngularAcceleration "
        "AngularMomentum AngularVelocity Area Capacitance Conductance Conductivity Count "
        "Density Dimensionless DoseEquivalent DoseEquivalentRate DynamicViscosity "
        "ElectricCharge ElectricCurrent ElectricCurrentDensity ElectricFieldStrength "
        "Energy Exposure Force Frequency Illuminance Inductance Irradiance "
        "KinematicViscosity Length LinearMomentum Luminance LuminousFlux "
        "LuminousIntensity MagneticFlux MagneticFluxDensity MagneticVectorPotential Mass "
        "MassConcentration MassFlowRate MassPerAreaTime MemoryCapacity MolalityOfSolute "
        "MolarEnergy MolarMass MolarVolume Power Pressure RadiantFlux RadiantIntensity "
        "Radioactivity RelativeHumidity Resistance Resistivity SolidAngle SpecificVolume "
        "Speed SurfaceDensity SurfaceTension Temperature Time Torque Voltage Volume "
        "VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber"
    ),
)
SENSOR_ALERT_TERMS = _terms(
    "https://gs1.org/voc/",
    ("ALARM_CONDITION ERROR_CONDITION"),
)
COMPONENT_TERMS = _terms(
    "https://ref.gs1.org/cbv/Comp-",
    (
        "altitude axial_distance azimuth easting elevation_angle height latitude "
        "longitude northing polar_angle spherical_radius x y z"
    ),
)
