// Reads an iCalendar object on stdin with Mozilla's ical.js (Thunderbird's parser) and
// prints what it understood as JSON, so the Python tests can compare it with what they meant
// to write. Usage: node parse.cjs [occurrences-per-series, default 20] < file.ics
'use strict';

// The package's exports map sends require() to dist/ical.es5.cjs (the deep path is not exported).
const ICAL = require('ical.js');

const LIMIT = Number(process.argv[2] || 20);

function utc(time) {
  return time ? time.toJSDate().toISOString() : null;
}

function zone(time) {
  if (!time) return null;
  if (time.zone && time.zone.tzid) return time.zone.tzid;
  return time.timezone || null;
}

function params(prop) {
  // jCal: [name, {params}, type, value...]; parameter names are lower case there.
  const json = prop.toJSON();
  return { value: prop.getFirstValue(), type: json[2], params: json[1] };
}

function valueType(comp, name) {
  const prop = comp.getFirstProperty(name);
  return prop ? prop.type : null;
}

function text(comp, name) {
  const value = comp.getFirstPropertyValue(name);
  return value === null || value === undefined ? null : String(value);
}

function describeEvent(vevent) {
  const event = new ICAL.Event(vevent);
  return {
    uid: event.uid,
    summary: event.summary,
    description: event.description,
    location: event.location,
    url: text(vevent, 'url'),
    conference: vevent.getAllProperties('conference').map(params),
    dtstart: utc(event.startDate),
    dtstart_zone: zone(event.startDate),
    dtend: utc(event.endDate),
    dtend_zone: zone(event.endDate),
    dtstamp: utc(vevent.getFirstPropertyValue('dtstamp')),
    sequence: event.sequence,
    status: text(vevent, 'status'),
    organizer: vevent.getFirstProperty('organizer') ? params(vevent.getFirstProperty('organizer')) : null,
    attendees: vevent.getAllProperties('attendee').map(params),
    recurrence_id: utc(event.recurrenceId),
    recurrence_id_zone: zone(event.recurrenceId),
    rrule: vevent.getFirstPropertyValue('rrule') ? vevent.getFirstPropertyValue('rrule').toString() : null,
    exdates: vevent.getAllProperties('exdate').flatMap((p) => p.getValues().map(utc)),
    alarms: vevent.getAllSubcomponents('valarm').map((a) => ({
      action: text(a, 'action'),
      trigger: text(a, 'trigger'),
      description: text(a, 'description'),
    })),
  };
}

function expand(master, exceptions) {
  const event = new ICAL.Event(master);
  for (const exception of exceptions) event.relateException(exception);
  const found = [];
  const iterator = event.iterator();
  let next;
  while (found.length < LIMIT && (next = iterator.next())) {
    const details = event.getOccurrenceDetails(next);
    found.push({
      recurrence_id: utc(details.recurrenceId),
      start: utc(details.startDate),
      end: utc(details.endDate),
      summary: details.item.summary,
    });
  }
  return found;
}

function main(input) {
  const calendar = new ICAL.Component(ICAL.parse(input));
  for (const vtimezone of calendar.getAllSubcomponents('vtimezone')) {
    ICAL.TimezoneService.register(vtimezone);
  }
  const vevents = calendar.getAllSubcomponents('vevent');
  const masters = vevents.filter((v) => !v.hasProperty('recurrence-id'));
  const series = {};
  for (const master of masters) {
    const uid = master.getFirstPropertyValue('uid');
    const exceptions = vevents.filter((v) => v.hasProperty('recurrence-id') && v.getFirstPropertyValue('uid') === uid);
    series[uid] = expand(master, exceptions);
  }
  const result = {
    method: text(calendar, 'method'),
    prodid: text(calendar, 'prodid'),
    version: text(calendar, 'version'),
    calendar_uid: text(calendar, 'uid'),
    name: text(calendar, 'name'),
    x_wr_calname: text(calendar, 'x-wr-calname'),
    refresh_interval: text(calendar, 'refresh-interval'),
    refresh_interval_type: valueType(calendar, 'refresh-interval'),
    x_published_ttl: text(calendar, 'x-published-ttl'),
    timezones: calendar.getAllSubcomponents('vtimezone').map((v) => ({
      tzid: text(v, 'tzid'),
      properties: v.getAllProperties().map((p) => p.name),
      standard: v.getAllSubcomponents('standard').map((s) => ({
        offset_from: text(s, 'tzoffsetfrom'),
        offset_to: text(s, 'tzoffsetto'),
      })),
      daylight: v.getAllSubcomponents('daylight').length,
    })),
    events: vevents.map(describeEvent),
    occurrences: series,
  };
  process.stdout.write(JSON.stringify(result));
}

const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  try {
    main(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    process.stderr.write(`ical.js could not read the object: ${error && error.stack ? error.stack : error}\n`);
    process.exit(2);
  }
});
