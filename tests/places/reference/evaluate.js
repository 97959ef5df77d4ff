// Evaluates OSM opening_hours values with opening_hours.js, the reference implementation.
// stdin: {"lat", "lon", "country_code", "cases": [{"value", "instants": [ISO strings]}]}
// stdout: [{"value", "error", "results": [{"at", "open", "unknown", "next_change"}]}]
// Run with TZ set to the places' time zone: the library reads dates in local time.
"use strict";
const opening_hours = require("opening_hours");

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const nominatim = {
    lat: request.lat,
    lon: request.lon,
    address: { country_code: request.country_code, state: request.state || "" },
  };
  const out = request.cases.map(({ value, instants }) => {
    let oh;
    try {
      oh = new opening_hours(value, nominatim, { mode: 0 });
    } catch (error) {
      return { value, error: String(error).split("\n")[0], results: [] };
    }
    const results = instants.map((at) => {
      const date = new Date(at);
      const change = oh.getNextChange(date, new Date(date.getTime() + 366 * 86400000));
      return {
        at,
        open: oh.getState(date),
        unknown: oh.getUnknown(date),
        next_change: change === undefined ? null : change.toISOString(),
        next_open: change === undefined ? null : oh.getState(change),
        next_unknown: change === undefined ? null : oh.getUnknown(change),
      };
    });
    return { value, error: null, results };
  });
  process.stdout.write(JSON.stringify(out));
});
