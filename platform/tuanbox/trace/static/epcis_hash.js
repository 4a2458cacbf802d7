// GS1 EPCIS Event Hash, hash version 2 (CBV 2.0 §8.9), in the browser: a port of
// traceability/hashing.py and gs1_uri.py so a phone recomputes each event's pre-hash and
// SHA-256 itself. Kept in step with the Python by a Chromium differential test
// (tests/platform/trace/test_hash_js.py); Python semantics are kept where JS differs: strings
// sort by code point, strip() trims Python's whitespace set, numbers are written as decimals
// (context precision 28, like Python's Decimal.normalize), \d is any Unicode decimal digit.
"use strict";

(() => {
  // -- vocabularies (traceability/epcis_terms.py; a Python test compares the two) -----------
  const TERM_LISTS = {
    BIZ_STEP: ["https://ref.gs1.org/cbv/BizStep-", "accepting arriving assembling collecting commissioning consigning creating_class_instance cycle_counting decommissioning departing destroying disassembling dispensing encoding entering_exiting holding inspecting installing killing loading other packing picking receiving removing repackaging repairing replacing reserving retail_selling sampling sensor_reporting shipping staging_outbound stock_taking stocking storing transporting unloading unpacking void_shipping"],
    DISPOSITION: ["https://ref.gs1.org/cbv/Disp-", "active available completeness_inferred completeness_verified conformant container_closed container_open damaged destroyed dispensed disposed encoded expired in_progress in_transit inactive mismatch_class mismatch_instance mismatch_quantity needs_replacement no_pedigree_match non_conformant non_sellable_other partially_dispensed recalled reserved retail_sold returned sellable_accessible sellable_not_accessible stolen unavailable unknown"],
    BIZ_TRANSACTION_TYPE: ["https://ref.gs1.org/cbv/BTT-", "bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt"],
    SOURCE_DEST_TYPE: ["https://ref.gs1.org/cbv/SDT-", "location owning_party possessing_party"],
    MEASUREMENT_TYPE: ["https://gs1.org/voc/", "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Altitude AmountOfSubstance AmountOfSubstancePerUnitVolume Angle AngularAcceleration AngularMomentum AngularVelocity Area Capacitance Conductance Conductivity Count Density Dimensionless DoseEquivalent DoseEquivalentRate DynamicViscosity ElectricCharge ElectricCurrent ElectricCurrentDensity ElectricFieldStrength Energy Exposure Force Frequency Illuminance Inductance Irradiance KinematicViscosity Length LinearMomentum Luminance LuminousFlux LuminousIntensity MagneticFlux MagneticFluxDensity MagneticVectorPotential Mass MassConcentration MassFlowRate MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy MolarMass MolarVolume Power Pressure RadiantFlux RadiantIntensity Radioactivity RelativeHumidity Resistance Resistivity SolidAngle SpecificVolume Speed SurfaceDensity SurfaceTension Temperature Time Torque Voltage Volume VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber"],
    SENSOR_ALERT: ["https://gs1.org/voc/", "ALARM_CONDITION ERROR_CONDITION"],
    COMPONENT: ["https://ref.gs1.org/cbv/Comp-", "altitude axial_distance azimuth easting elevation_angle height latitude longitude northing polar_angle spherical_radius x y z"],
  };
  const T = {};
  for (const [name, [base, words]] of Object.entries(TERM_LISTS)) {
    T[name] = new Map(words.split(" ").map((w) => [w, base + w]));
  }
  const DEFAULT_NAMESPACES = [
    ["gs1", "https://gs1.org/voc/"],
    ["cbvmda", "urn:epcglobal:cbv:mda"],
    ["epcis", "https://ref.gs1.org/epcis/"],
    ["cbv", "https://ref.gs1.org/cbv/"],
  ];
  const IGNORED_TOP = ["type", "eventID", "recordTime", "errorDeclaration", "@context"];
  const IGNORED_ANYWHERE = new Set(["rdfs:comment", "comment", "#text"]);
  const CBV_URNS = [
    ["urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"],
    ["urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"],
    ["urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"],
    ["urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"],
    ["urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"],
  ];
  const QUANTITY_ORDER = ["epcClass", "quantity", "uom"];
  const METADATA_ORDER = ["time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules"];
  const REPORT_ORDER = ["type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time", "microorganism", "chemicalSubstance", "value", "component", "stringValue", "booleanValue", "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "uom", "coordinateReferenceSystem"];
  const REPORT_TERMS = new Map([["type", T.MEASUREMENT_TYPE], ["exception", T.SENSOR_ALERT], ["component", T.COMPONENT]]);
  const NO_TERMS = new Map();

  // -- Python semantics --------------------------------------------------------------------
  // A JSON integer beyond 2^53 as written (Python's json keeps it exact; a JS number cannot).
  class JsonInteger {
    constructor(text) { this.text = text; }
    toString() { return this.text; }
  }
  // JSON.parse keeping such integers exact, where the browser gives the reviver the source.
  const parseJson = (text) => JSON.parse(text, (key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)
      ? new JsonInteger(context.source) : value);
  const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JsonInteger);
  const asList = (v) => (Array.isArray(v) ? v : [v]);
  // str.strip(): Python's whitespace set (JS trim() also trims U+FEFF and not U+001C-1F, U+0085).
  const PY_SPACE = /^[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
  const strip = (s) => s.replace(PY_SPACE, "");
  // sorted(): by code point (JS compares UTF-16 units, which puts astral characters too early).
  const byCodePoint = (a, b) => {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.charCodeAt(i), y = b.charCodeAt(i);
      if (x === y) continue;
      const xs = x >= 0xd800 && x <= 0xdfff, ys = y >= 0xd800 && y <= 0xdfff;
      if (xs === ys) return x - y;
      return xs ? 1 : -1; // a surrogate stands for a code point above every BMP unit
    }
    return a.length - b.length;
  };
  const sorted = (items) => items.slice().sort(byCodePoint);
  const pyStr = (v) => (v === true ? "True" : v === false ? "False" : v === null || v === undefined ? "None" : String(v));
  const cpLength = (s) => Array.from(s).length;

  // -- numbers (Decimal) -------------------------------------------------------------------
  const NUMBER = /^([+-]?)(\d+)?(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
  const PRECISION = 28;
  const roundHalfEven = (digits, keep) => {
    // digits: a string of decimal digits; keep the first `keep`, half-even on the rest.
    const head = digits.slice(0, keep), rest = digits.slice(keep);
    const first = rest.charCodeAt(0) - 48;
    const tail = rest.slice(1);
    const last = head.charCodeAt(head.length - 1) - 48;
    const up = first > 5 || (first === 5 && (/[1-9]/.test(tail) || last % 2 === 1));
    if (!up) return [head, 0];
    const chars = head.split("");
    let i = chars.length - 1;
    while (i >= 0 && chars[i] === "9") { chars[i] = "0"; i--; }
    if (i < 0) return ["1" + chars.join(""), 1];
    chars[i] = String.fromCharCode(chars[i].charCodeAt(0) + 1);
    return [chars.join(""), 0];
  };
  // A decimal literal as Python's canonical_number writes Decimal(text); null if not one.
  const decimalText = (text) => {
    const m = NUMBER.exec(text);
    if (!m || (m[2] === undefined && !m[3])) return null;
    const sign = m[1] === "-" ? "-" : "";
    const whole = m[2] || "", frac = m[3] || "";
    let exp = (m[4] ? parseInt(m[4], 10) : 0) - frac.length;
    let digits = (whole + frac).replace(/^0+/, "");
    if (!digits) return "0";
    // Drop trailing zeros (they do not change the value).
    const trimmed = digits.replace(/0+$/, "");
    exp += digits.length - trimmed.length;
    digits = trimmed;
    if (exp >= 0) return sign + digits + "0".repeat(exp); // integral: str(int(number))
    if (digits.length > PRECISION) {
      // normalize() rounds to the context's 28 significant digits.
      const [rounded, carry] = roundHalfEven(digits, PRECISION);
      exp += digits.length - PRECISION + carry;
      digits = rounded.slice(0, PRECISION).replace(/0+$/, "");
      exp += PRECISION - digits.length;
      if (exp >= 0) return sign + digits + "0".repeat(exp);
    }
    const point = digits.length + exp;
    if (point > 0) return sign + digits.slice(0, point) + "." + digits.slice(point);
    return sign + "0." + "0".repeat(-point) + digits;
  };
  const canonicalNumber = (value) => {
    if (typeof value === "number") {
      if (!Number.isFinite(value)) return String(value);
      return decimalText(String(value)); // shortest round-trip digits, as Python's repr
    }
    return decimalText(String(value)) ?? String(value);
  };
  const numberText = (text) => {
    if (!text || !/^[\x00-\x7f]*$/.test(text)) return null;
    if (["nan", "inf", "infinity"].includes(text.toLowerCase().replace(/^[+-]+/, ""))) return null;
    return decimalText(text);
  };

  // -- time --------------------------------------------------------------------------------
  const TIME = /^(\d{4})-?(\d{2})-?(\d{2})(?:.(\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d{1,6})?)?)?)?)?$/su;
  const daysIn = (y, m) => [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
  // ISO 8601 date-time to UTC at millisecond precision with a Z (rules 8-9); as written if not one.
  const canonicalTime = (value) => {
    const text = strip(value);
    const m = TIME.exec(text);
    if (!m) return text;
    const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => parseInt(m[i] || "0", 10));
    if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 59 || y < 1) return text;
    const micros = parseInt(((m[7] || "") + "000000").slice(0, 6), 10);
    let offset = 0;
    const zone = m[8];
    if (zone && zone !== "Z") {
      const parts = zone.slice(1).replace(/[.,]\d+$/, "").replace(/:/g, "");
      const oh = parseInt(parts.slice(0, 2), 10), om = parseInt(parts.slice(2, 4) || "0", 10), os = parseInt(parts.slice(4, 6) || "0", 10);
      if (oh > 23 || om > 59 || os > 59) return text;
      offset = (zone[0] === "-" ? -1 : 1) * (oh * 3600 + om * 60 + os) * 1000;
    }
    const date = new Date(0);
    date.setUTCFullYear(y, mo - 1, d);
    date.setUTCHours(h, mi, s, 0);
    const millis = Math.floor((micros + 500) / 1000);
    const at = new Date(date.getTime() - offset + millis);
    const year = at.getUTCFullYear();
    if (year < 1 || year > 9999) return text;
    // strftime("%Y") on glibc does not pad years below 1000; toISOString() does.
    const iso = at.toISOString();
    return String(year) + iso.slice(iso.indexOf("-", 1));
  };

  // -- GS1 identifiers (gs1_uri.py) --------------------------------------------------------
  const DL_BASE = "https://id.gs1.org";
  const CSET82 = "(?:%2[125-9A-Fa-f]|%3[0-9A-Fa-f]|%4[1-9A-Fa-f]|%5[0-9AaFf]|%6[1-9A-Fa-f]|%7[0-9Aa]|[!')(*+,.0-9:;=A-Za-z_\\-])";
  const QUAL = "[\"'\\-.0-9;-?A-Z_a-z]";
  const SHORT_NAMES = [["gtin", "01"], ["itip", "8006"], ["cpid", "8010"], ["gln", "414"], ["party", "417"], ["gsrnp", "8017"], ["gsrn", "8018"], ["gcn", "255"], ["sscc", "00"], ["gdti", "253"], ["ginc", "401"], ["gsin", "402"], ["grai", "8003"], ["giai", "8004"], ["cpv", "22"], ["lot", "10"], ["ser", "21"]];
  const PRIMARY = ["00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8017", "8018"];
  const KEY_ALT = "01|gtin|8006|itip|8010|cpid|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti|401|ginc|402|gsin|8003|grai|8004|giai";
  const re = (source) => new RegExp(source.replace(/\\d/g, "\\p{Nd}"), "u");
  const DIGITAL_LINK = re(`^https?:(//(([^/?#]*)@)?([^/?#:]*)(:([^/?#]*))?)?(([^?#]*)(/(${KEY_ALT})/)(\\d{4}[^/]+)(/[^/]+/[^/]+)?/?(\\?[^?\\n]*)?(#[^\\n]*)?)`);
  const CANONICAL_HEAD = re("^https://id\\.gs1\\.org/(01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)/\\d{4}");
  const VALID = [
    "00/\\d{18}",
    `01/\\d{14}(/(21|10)/${QUAL}{0,20}|/235/${QUAL}{0,28})?`,
    `253/\\d{13}${QUAL}{0,17}`,
    "255/\\d{13}\\d{0,12}",
    `401/${QUAL}{0,30}`,
    "402/\\d{17}",
    `414/\\d{13}(/254/${QUAL}{0,20})?`,
    "417/\\d{13}",
    `8003/\\d{14}${QUAL}{0,16}`,
    `8004/${QUAL}{0,30}`,
    `8006/\\d{18}(/(21|10)/${QUAL}{0,20})?`,
    "8010/[#\\-/0-9A-Z]{0,30}(/8011/\\d{0,12})?",
    "8017/\\d{18}",
    "8018/\\d{18}",
  ].map((body) => re(`^https://id\\.gs1\\.org/${body}$`));
  const GTIN_HEAD = re("^https://id\\.gs1\\.org/01/(\\d+)");
  const CPV = re("^(https://id\\.gs1\\.org/(?:01/\\d{14}|8006/\\d{18}))/22/([^\\n]*)$");
  const CPV_REST = re(`^(?:${QUAL}|/){0,20}$`);
  const LOT_AND_SERIAL = re(`^(https://id\\.gs1\\.org/(?:01/\\d{14}|8006/\\d{18}))/10/${QUAL}{0,20}(/21/${QUAL}{0,20})$`);
  const EPC_URN = re("^urn:epc:(id|class|idpat):([a-z]+):(\\d+)\\.([^\\n]*)$");
  const DIGITS = re("^\\d+$");
  const isDigits = (s) => DIGITS.test(s);
  const full = (pattern, text) => re(`^(?:${pattern})$`).test(text);

  const ONE_DIGIT = re("^\\d$");
  // int(d) of a decimal digit: its distance from the start of its run of ten (Unicode keeps
  // each script's digits 0-9 contiguous).
  const digitValue = (ch) => {
    const code = ch.codePointAt(0);
    if (code >= 48 && code <= 57) return code - 48;
    let zero = code;
    while (zero > code - 9 && ONE_DIGIT.test(String.fromCodePoint(zero - 1))) zero--;
    return code - zero;
  };
  const checkDigit = (digits) => {
    let total = 0;
    Array.from(digits).reverse().forEach((d, i) => { total += digitValue(d) * (i % 2 === 0 ? 3 : 1); });
    return String((10 - (total % 10)) % 10);
  };
  const withCheck = (digits) => digits + checkDigit(digits);
  const escapeSegment = (text) => {
    for (const ch of "!()*+,:") text = text.split(ch).join("%" + ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"));
    return text;
  };
  const gtin = (company, ref) => withCheck(Array.from(ref)[0] + company + Array.from(ref).slice(1).join(""));
  const partition = (company, total, rest) => cpLength(company) >= 6 && cpLength(company) <= 12 && cpLength(company) + cpLength(rest) === total;

  const epcUrnToDl = (urn) => {
    const m = EPC_URN.exec(urn);
    if (!m) return null;
    const [, kind, scheme, company, rest] = m;
    const clen = cpLength(company);
    if (clen < 6 || clen > 12) return null;
    if (kind === "id" && scheme === "giai") {
      return full(`${CSET82}{1,${30 - clen}}`, rest) ? `${DL_BASE}/8004/${company}${escapeSegment(rest)}` : null;
    }
    const dot = rest.indexOf(".");
    const ref = dot === -1 ? rest : rest.slice(0, dot);
    const tail = dot === -1 ? null : rest.slice(dot + 1);
    const rlen = cpLength(ref);
    if ((kind === "id" && scheme === "sgtin") || (kind === "class" && scheme === "lgtin")) {
      if (!(isDigits(ref) && clen + rlen === 13 && tail !== null)) return null;
      if (!full(`${CSET82}{1,20}`, tail)) return null;
      return `${DL_BASE}/01/${gtin(company, ref)}/${scheme === "sgtin" ? "21" : "10"}/${escapeSegment(tail)}`;
    }
    if (kind === "idpat" && scheme === "sgtin") {
      return isDigits(ref) && clen + rlen === 13 && tail === "*" ? `${DL_BASE}/01/${gtin(company, ref)}` : null;
    }
    if (kind !== "id") return null;
    if (scheme === "sscc" && tail === null && isDigits(ref) && partition(company, 17, ref)) {
      return `${DL_BASE}/00/${gtin(company, ref)}`;
    }
    if (["sgln", "grai", "gdti"].includes(scheme) && tail !== null) {
      if (!(clen + rlen === 12 && (isDigits(ref) || ref === ""))) return null;
      if (!full(`${CSET82}{1,20}`, tail)) return null;
      const key = withCheck(company + ref);
      if (scheme === "sgln") return `${DL_BASE}/414/${key}` + (tail === "0" ? "" : `/254/${escapeSegment(tail)}`);
      if (scheme === "grai" && cpLength(tail) <= 16) return `${DL_BASE}/8003/0${key}${escapeSegment(tail)}`;
      if (scheme === "gdti") return `${DL_BASE}/253/${key}${escapeSegment(tail)}`;
      return null;
    }
    if (tail !== null) return null;
    if (scheme === "pgln" && (isDigits(ref) || ref === "") && clen + rlen === 12) return `${DL_BASE}/417/${withCheck(company + ref)}`;
    if ((scheme === "gsrn" || scheme === "gsrnp") && isDigits(ref) && partition(company, 17, ref)) {
      return `${DL_BASE}/${scheme === "gsrn" ? "8018" : "8017"}/${withCheck(company + ref)}`;
    }
    return null;
  };

  const constrainedDl = (input) => {
    if (!DIGITAL_LINK.test(input)) return null;
    let uri = input.split("?")[0];
    for (const [name, ai] of SHORT_NAMES) uri = uri.split(`/${name}/`).join(`/${ai}/`);
    if (!CANONICAL_HEAD.test(uri)) {
      for (const ai of PRIMARY) {
        const at = uri.indexOf(`/${ai}/`);
        if (at !== -1) { uri = DL_BASE + uri.slice(at); break; }
      }
    }
    const g = GTIN_HEAD.exec(uri);
    if (g && cpLength(g[1]) < 14) {
      const len = cpLength(g[1]);
      const pad = len === 13 ? 1 : len === 12 ? 2 : len >= 8 ? 6 : 0;
      uri = uri.replace("/01/", "/01/" + "0".repeat(pad));
    }
    const cpv = CPV.exec(uri);
    if (cpv && CPV_REST.test(cpv[2])) {
      const rest = cpv[2];
      uri = cpv[1] + (rest.includes("/") ? rest.slice(rest.indexOf("/")) : "");
    }
    const ls = LOT_AND_SERIAL.exec(uri);
    if (ls) uri = ls[1] + ls[2];
    return VALID.some((p) => p.test(uri)) ? uri : null;
  };

  const normaliseGs1Uri = (value) => {
    if (!value.includes(".")) return null;
    if (value.startsWith("urn:epc:")) return epcUrnToDl(value);
    return constrainedDl(value);
  };

  // -- the pre-hash (hashing.py) -----------------------------------------------------------
  const partition3 = (text, sep) => {
    const at = text.indexOf(sep);
    return at === -1 ? [text, "", ""] : [text.slice(0, at), sep, text.slice(at + sep.length)];
  };
  const canonicalValue = (value, ns) => {
    if (typeof value === "boolean") return value ? "true" : "false";
    if (typeof value === "number") return canonicalNumber(value);
    if (value instanceof JsonInteger) return decimalText(value.text);
    let text = strip(pyStr(value));
    const [prefix, sep, local] = partition3(text, ":");
    if (sep && ns && ns.has(prefix) && !local.startsWith("//")) text = ns.get(prefix) + local;
    for (const [urn, web] of CBV_URNS) text = text.split(urn).join(web);
    text = numberText(text) || text;
    return normaliseGs1Uri(text) || text;
  };
  const term = (value, terms, ns) => {
    const text = strip(pyStr(value));
    return (terms.has(text) && terms.get(text)) || canonicalValue(text, ns);
  };
  const isTimeKey = (key) => { const k = key.toLowerCase(); return k.includes("time") && !k.includes("offset"); };
  const field = (key, value, ns, terms) => {
    if (value === null || value === undefined) return "";
    let text;
    if (isTimeKey(key)) text = canonicalTime(pyStr(value));
    else if (terms) text = term(value, terms, ns);
    else text = canonicalValue(value, ns);
    return text ? `${key}=${text}` : "";
  };
  const expandKey = (key, ns) => {
    const [prefix, sep, local] = partition3(key, ":");
    if (sep && ns.has(prefix) && !local.startsWith("//")) return "{" + ns.get(prefix) + "}" + local;
    return key;
  };
  const extensionParts = (key, value, ns) => {
    if (IGNORED_ANYWHERE.has(key) || key.startsWith("@")) return [];
    if (Array.isArray(value)) return value.flatMap((item) => extensionParts(key, item, ns));
    const name = expandKey(key, ns);
    if (isMap(value)) {
      const text = value["#text"];
      const head = name + (text !== null && text !== undefined && text !== "" ? "=" + canonicalValue(text, ns) : "");
      return [head + extensions(value, [], ns)];
    }
    if (value === null || value === undefined) return [name];
    const text = canonicalValue(value, ns);
    return [name + (text ? "=" + text : "")];
  };
  const extensionList = (obj, known, ns) => {
    const parts = [];
    for (const [key, value] of Object.entries(obj)) {
      if (!known.includes(key)) parts.push(...extensionParts(key, value, ns));
    }
    return parts;
  };
  const extensions = (obj, known, ns) => sorted(extensionList(obj, known, ns)).join("");
  const get = (obj, key) => (Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined);
  const ordered = (obj, order, ns, terms) =>
    order.map((key) => field(key, get(obj, key), ns, terms.get(key))).join("") + extensions(obj, order, ns);
  const sortedList = (name, items) => {
    const kept = items.filter((item) => item);
    return kept.length ? name + sorted(kept).join("") : "";
  };
  const epcs = (name, values, ns) => sortedList(name, asList(values).map((v) => field("epc", v, ns)));
  const quantities = (name, elements, ns) =>
    sortedList(name, asList(elements).filter(isMap).map((e) => "quantityElement" + ordered(e, QUANTITY_ORDER, ns, NO_TERMS)));
  const typed = (key, terms) => (name, items, ns) =>
    sortedList(name, asList(items).filter(isMap).map((item) =>
      field("type", get(item, "type"), ns, terms) + field(key, get(item, key), ns) + extensions(item, ["type", key], ns)));
  const location = (name, value, ns) => {
    if (!isMap(value)) return "";
    const body = ordered(value, ["id"], ns, NO_TERMS);
    return body ? name + body : "";
  };
  const orEmpty = (v) => (v === null || v === undefined || v === "" || v === 0 || v === false || (Array.isArray(v) && !v.length) || (isMap(v) && !Object.keys(v).length) ? [] : v);
  const persistent = (name, value, ns) => {
    if (!isMap(value)) return "";
    const body = ["set", "unset"].map((sub) =>
      sorted(asList(orEmpty(get(value, sub))).map((v) => field(sub, v, ns, T.DISPOSITION))).join("")).join("");
    return body ? name + body : "";
  };
  const sensorElement = (element, ns) => {
    let text = "sensorElement";
    const metadata = get(element, "sensorMetadata");
    if (isMap(metadata)) {
      const body = ordered(metadata, METADATA_ORDER, ns, NO_TERMS);
      text += body ? "sensorMetadata" + body : "";
    }
    const reports = asList(orEmpty(get(element, "sensorReport"))).filter(isMap)
      .map((r) => "sensorReport" + ordered(r, REPORT_ORDER, ns, REPORT_TERMS));
    text += sorted(reports).join("");
    return text + extensions(element, ["sensorMetadata", "sensorReport"], ns);
  };
  const sensors = (name, elements, ns) => sortedList(name, asList(elements).filter(isMap).map((e) => sensorElement(e, ns)));
  const ilmd = (name, value, ns) => {
    const body = isMap(value) ? extensions(value, [], ns) : "";
    return body ? name + body : "";
  };
  const simple = (terms) => (name, value, ns) => sorted(asList(value).map((v) => field(name, v, ns, terms))).join("");

  // CBV 2.0 §8.9 canonical property order (after eventType).
  const ORDER = [
    ["eventTime", simple()], ["eventTimeZoneOffset", simple()], ["certificationInfo", simple()],
    ["parentID", simple()], ["epcList", epcs], ["inputEPCList", epcs], ["childEPCs", epcs],
    ["quantityList", quantities], ["childQuantityList", quantities], ["inputQuantityList", quantities],
    ["outputEPCList", epcs], ["outputQuantityList", quantities], ["action", simple()],
    ["transformationID", simple()], ["bizStep", simple(T.BIZ_STEP)], ["disposition", simple(T.DISPOSITION)],
    ["persistentDisposition", persistent], ["readPoint", location], ["bizLocation", location],
    ["bizTransactionList", typed("bizTransaction", T.BIZ_TRANSACTION_TYPE)],
    ["sourceList", typed("source", T.SOURCE_DEST_TYPE)],
    ["destinationList", typed("destination", T.SOURCE_DEST_TYPE)],
    ["sensorElementList", sensors], ["ilmd", ilmd],
  ];
  const KNOWN = ORDER.map(([name]) => name).concat(IGNORED_TOP);

  const namespacesFromContext = (context, base) => {
    const ns = new Map(base || DEFAULT_NAMESPACES);
    for (const item of asList(context)) {
      if (!isMap(item)) continue;
      for (const [key, val] of Object.entries(item)) {
        if (typeof val === "string" && !key.startsWith("@")) ns.set(key, val);
      }
    }
    return ns;
  };
  const isEmpty = (v) => v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length) || (isMap(v) && !Object.keys(v).length);

  // The version 2 pre-hash string of one event (JSON-LD, as parsed by JSON.parse).
  const prehash = (event, namespaces) => {
    const ns = namespaces || namespacesFromContext(get(event, "@context"));
    let out = "eventType=" + strip(pyStr(get(event, "type")));
    for (const [name, render] of ORDER) {
      const value = get(event, name);
      if (isEmpty(value)) continue;
      out += render(name, value, ns);
    }
    return out + sorted(extensionList(event, KNOWN, ns)).join("");
  };
  const hexOf = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (text) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const hashPrehash = async (pre) => `ni:///sha-256;${hexOf(await sha256(pre))}?ver=CBV2.0`;
  const eventHash = async (event, namespaces) => hashPrehash(prehash(event, namespaces));
  // The Merkle leaf text: the hash, plus '#' and the error declaration if any (hashing.anchor_leaf).
  const anchorLeaf = async (event, namespaces) => {
    let leaf = await eventHash(event, namespaces);
    const declaration = get(event, "errorDeclaration");
    if (isMap(declaration)) {
      const ns = namespaces || namespacesFromContext(get(event, "@context"));
      leaf += "#" + extensionParts("errorDeclaration", declaration, ns).join("");
    }
    return leaf;
  };

  // RFC 6962 Merkle tree hash of leaf data (Uint8Arrays), as traceability.merkle.root: leaf =
  // SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), an odd last node carried up.
  const digest = async (...parts) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  };
  const merkleRoot = async (leaves) => {
    if (!leaves.length) return digest();
    let level = [];
    for (const d of leaves) level.push(await digest(Uint8Array.of(0), d));
    while (level.length > 1) {
      const up = [];
      for (let i = 0; i + 1 < level.length; i += 2) up.push(await digest(Uint8Array.of(1), level[i], level[i + 1]));
      if (level.length % 2) up.push(level[level.length - 1]);
      level = up;
    }
    return level[0];
  };
  // A lot's completeness leaf in a window (traceability.completeness.lot_leaf): its event
  // count and the sub-root of its event leaves (texts, in window order).
  const lotLeaf = (gtin, lot, count, subRootHex) => `tb:lot:v1 ${gtin}/${lot} count=${count} root=0x${subRootHex.replace(/^0x/, "")}`;
  const lotCommitmentLeaf = async (gtin, lot, eventLeaves) => {
    const encoder = new TextEncoder();
    const sub = await merkleRoot(eventLeaves.map((l) => encoder.encode(l)));
    return lotLeaf(gtin, lot, eventLeaves.length, hexOf(sub));
  };

  window.EpcisHash = Object.freeze({ VERSION: 2, parseJson, prehash, eventHash, anchorLeaf, hashPrehash, namespacesFromContext, canonicalTime, canonicalNumber, normaliseGs1Uri, merkleRoot, lotLeaf, lotCommitmentLeaf });
})();
