// What a phone app reads from the API, written against the types openapi-typescript generates
// from /v1/openapi.json (tests/clients/test_generated_clients.py compiles it with tsc --noEmit).
// Each @ts-expect-error line must be an error: it fails the build if a type were any,
// unknown or an empty record, so the check proves the types are precise, not just present.
import type { components, paths } from "./api";

type Schemas = components["schemas"];
type Json<P extends keyof paths> = paths[P]["get"] extends {
  responses: { 200: { content: { "application/json": infer Body } } };
}
  ? Body
  : never;
type GeoJson<P extends keyof paths> = paths[P]["get"] extends {
  responses: { 200: { content: { "application/geo+json": infer Body } } };
}
  ? Body
  : never;

// A countdown: minutes from meta.now to each departure's expected (else scheduled) time.
export function countdowns(board: Json<"/v1/stops/{stop_id}/departures">): number[] {
  const now = Date.parse(board.meta.now ?? board.meta.generated_at);
  return (board.data.departures ?? []).map((departure: Schemas["Departure"]) => {
    const at = departure.expected_time ?? departure.scheduled_time ?? board.meta.generated_at;
    return Math.round((Date.parse(at) - now) / 60000);
  });
}

export function departureLine(departure: Schemas["Departure"]): string {
  const status: "scheduled" | "on_time" | "delayed" | "early" | "cancelled" | "skipped" | "added" | "no_data" =
    departure.status;
  const name = departure.line?.short_name ?? departure.line?.long_name ?? "";
  const delay = departure.delay_s ?? 0;
  return `${name} ${departure.headsign ?? ""} ${departure.stop?.name ?? ""} ${status} ${delay}`;
}

// include=references: departures name their line and platform by id; the answer's
// references member holds each once.
export function boardByReference(board: Json<"/v1/stops/{stop_id}/departures">): string[] {
  const references: Schemas["References"] | undefined = board.references;
  return (board.data.departures ?? []).map((departure) => {
    const line = departure.line_id ? references?.lines[departure.line_id] : undefined;
    const stop = departure.stop_id ? references?.stops[departure.stop_id] : undefined;
    const mode: Schemas["LineSummary"]["mode"] | undefined = line?.mode;
    // @ts-expect-error a referenced stop's latitude is a number, not a string
    const wrong: string | undefined = stop?.lat;
    return `${line?.short_name ?? ""} ${mode ?? ""} ${stop?.name ?? ""} ${wrong ?? ""}`;
  });
}

export function emptyBoard(board: Json<"/v1/stops/{stop_id}/departures">): string | null {
  const code: Schemas["Explanation"]["code"] | undefined = board.data.explanation?.code;
  return code === "no_service_that_day" ? board.data.explanation?.message ?? null : null;
}

export function priceLabel(event: Schemas["Event"]): string {
  const price = event.price;
  if (!price) return "";
  const free: boolean | null = price.free;
  const text: string | null = price.text;
  // @ts-expect-error price.text is a string, not a number
  const wrong: number = price.text;
  return free ? "free" : (text ?? "") + String(wrong);
}

export function eventCard(event: Schemas["Event"]): string {
  const image: string | undefined = event.image?.thumb_url ?? event.image?.url;
  const ages = event.age ? `${event.age.min ?? ""}-${event.age.max ?? ""}` : "";
  const links = (event.registration ?? []).map((r) => `${r.type}: ${r.value}`);
  const words: string[] = event.keywords ?? [];
  const mode: "offline" | "online" | "mixed" | undefined = event.attendance_mode;
  const place = event.location?.name ?? event.location?.city ?? "";
  const origin = (event.sources ?? []).map((s) => s.source);
  return [event.title, image, ages, ...links, ...words, mode, place, ...origin].join(" ");
}

export function homeScreen(home: Json<"/v1/home">): string[] {
  const parts = home.data;
  const lines: string[] = [];
  for (const board of parts.departures.items) {
    lines.push(board.stop.name, ...board.departures.map(departureLine));
  }
  for (const alert of parts.alerts.items) {
    const cause: Schemas["Alert"]["cause"] = alert.cause;
    const trips = (alert.trips ?? []).map((trip) => trip.headsign ?? trip.id);
    lines.push(`${alert.header ?? ""} ${cause ?? ""} ${alert.effect ?? ""} ${trips.join(",")}`);
  }
  for (const station of parts.bikes.items) {
    lines.push(`${station.name ?? ""} ${station.bikes_available ?? "?"} ${station.freshness.stale}`);
  }
  for (const parking of parts.parkings.items) lines.push(`${parking.name ?? ""} ${parking.state}`);
  for (const event of [...parts.events_today.items, ...parts.events_weekend.items]) {
    lines.push(eventCard(event), priceLabel(event));
  }
  for (const item of parts.agenda.items) lines.push(item.title ?? "");
  // "Trafic normal" only when it is true: a healthy, fresh alerts source with nothing to say.
  const why: Schemas["PartReason"]["code"] = parts.alerts.reason.code;
  if (why === "empty") lines.push("Trafic normal");
  else if (why !== "ok") lines.push(parts.alerts.unavailable?.message ?? parts.alerts.reason.message);
  const weekend: string[] | undefined = home.meta.weekend;
  lines.push(home.meta.now ?? "", ...(weekend ?? []));
  // @ts-expect-error home parts are typed: a bike station has no such member
  lines.push(parts.bikes.items[0].no_such_member);
  // @ts-expect-error meta declares its members: no other
  lines.push(home.meta.no_such_member);
  return lines;
}

export function tripView(trip: Json<"/v1/trips/{trip_id}">): string[] {
  const status: Schemas["Trip"]["status"] = trip.data.status;
  const calls = trip.data.calls.map((call) => {
    const stop: { id: string; name: string; lat: number; lon: number } | undefined = call.stop;
    return `${stop?.name ?? call.stop_id} ${call.status} ${call.passed ?? false}`;
  });
  const vehicle = trip.data.vehicle;
  return [status, ...calls, vehicle ? `${vehicle.lat},${vehicle.lon} ${vehicle.status}` : ""];
}

export function lineView(line: Json<"/v1/lines/{line_id}">): string[] {
  // LineDetail, not LineSummary: its directions and agency are there.
  const mode: Schemas["LineSummary"]["mode"] = line.data.mode;
  const stops = line.data.directions.flatMap((d) => d.stops.map((s) => s.name));
  return [mode, line.data.agency.name, ...stops];
}

export function stopView(stop: Json<"/v1/stops/{stop_id}">): string[] {
  // StopDetail, not Stop: its platforms are there.
  return [stop.data.name, ...stop.data.platforms.map((p) => p.platform_code ?? p.name)];
}

export function vehicles(list: Json<"/v1/vehicles">): string[] {
  return list.data.map((v) => `${v.id} ${v.occupancy ?? ""} ${v.status ?? ""} ${v.line?.mode ?? ""}`);
}

export function lineShape(geometry: GeoJson<"/v1/lines/{line_id}.geojson">): number {
  let points = 0;
  for (const feature of geometry.features) {
    const source: "shapes.txt" | "stops" = feature.properties.geometry_source;
    points += (feature.geometry?.coordinates.length ?? 0) + source.length * 0;
  }
  return points;
}

export function stopPins(collection: GeoJson<"/v1/stops.geojson">): [number, number, string][] {
  return collection.features.map((f) => [f.geometry.coordinates[0], f.geometry.coordinates[1], f.properties.name]);
}

export function realtimeState(board: Json<"/v1/departures">): boolean {
  const states = Object.values(board.meta.realtime ?? {});
  const stale = board.data.some((b) => b.explanation?.code === "terminus");
  return states.some((s) => s.available && !s.stale) && !stale;
}

export function eventPage(page: Json<"/v1/events">): [number, string | null] {
  return [page.meta.total ?? 0, page.meta.next_cursor ?? null];
}

export function bikeFeeds(stations: Json<"/v1/bikes/stations">): (number | null)[] {
  return Object.values(stations.meta.feeds ?? {}).map((feed) => feed.age_s);
}

// @ts-expect-error an alert's cause is one of GTFS-RT's causes
export const notACause: Schemas["Alert"]["cause"] = "bad_weather";
