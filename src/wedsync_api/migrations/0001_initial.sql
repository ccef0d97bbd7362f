-- WedSync reference schema. Every row belongs to exactly one tenant; every query the
-- API runs filters on tenant_id, and every foreign key to a tenant-owned row includes
-- tenant_id so a row can never point into another tenant's data.

CREATE TABLE tenants (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('supplier_business', 'planner')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of each key is stored; the key itself is shown once, when issued.
CREATE TABLE api_keys (
    key_hash    bytea PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE suppliers (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    category    text NOT NULL,
    region      text NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    rating      real CHECK (rating BETWEEN 0 AND 5),
    price_band  smallint NOT NULL CHECK (price_band BETWEEN 1 AND 4),
    services    text[] NOT NULL DEFAULT '{}',
    email       text,
    phone       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX suppliers_search ON suppliers (tenant_id, category, region, price_band);
CREATE INDEX suppliers_geo ON suppliers (tenant_id, lat, lon);

CREATE TABLE venues (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    region      text NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    capacity    integer NOT NULL CHECK (capacity > 0),
    price_band  smallint NOT NULL CHECK (price_band BETWEEN 1 AND 4),
    UNIQUE (tenant_id, id)
);

CREATE TABLE couples (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    partner_a   text NOT NULL,
    partner_b   text NOT NULL,
    email       text,
    UNIQUE (tenant_id, id)
);

CREATE TABLE weddings (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL,
    couple_id    bigint NOT NULL,
    venue_id     bigint,
    wedding_date date NOT NULL,
    guest_count  integer NOT NULL CHECK (guest_count >= 0),
    status       text NOT NULL DEFAULT 'planned'
                 CHECK (status IN ('planned', 'confirmed', 'completed', 'cancelled')),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, couple_id) REFERENCES couples (tenant_id, id),
    FOREIGN KEY (tenant_id, venue_id) REFERENCES venues (tenant_id, id)
);
CREATE INDEX weddings_by_date ON weddings (tenant_id, wedding_date);

-- One booking per venue per day: the unique constraint is what turns a double
-- booking into a 409, even under concurrent requests.
CREATE TABLE venue_bookings (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    venue_id    bigint NOT NULL,
    day         date NOT NULL,
    wedding_id  bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (venue_id, day),
    FOREIGN KEY (tenant_id, venue_id) REFERENCES venues (tenant_id, id),
    FOREIGN KEY (tenant_id, wedding_id) REFERENCES weddings (tenant_id, id)
);
CREATE INDEX venue_bookings_range ON venue_bookings (tenant_id, venue_id, day);

CREATE TABLE wedding_suppliers (
    tenant_id       bigint NOT NULL,
    wedding_id      bigint NOT NULL,
    supplier_id     bigint NOT NULL,
    role            text NOT NULL,
    arrival_status  text NOT NULL DEFAULT 'expected'
                    CHECK (arrival_status IN ('expected', 'arrived', 'late', 'no_show')),
    arrived_at      timestamptz,
    PRIMARY KEY (wedding_id, supplier_id),
    FOREIGN KEY (tenant_id, wedding_id) REFERENCES weddings (tenant_id, id),
    FOREIGN KEY (tenant_id, supplier_id) REFERENCES suppliers (tenant_id, id)
);
CREATE INDEX wedding_suppliers_supplier ON wedding_suppliers (supplier_id);

CREATE TABLE timeline_items (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL,
    wedding_id   bigint NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    title        text NOT NULL,
    location     text NOT NULL DEFAULT '',
    supplier_id  bigint,
    CHECK (ends_at >= starts_at),
    FOREIGN KEY (tenant_id, wedding_id) REFERENCES weddings (tenant_id, id)
);
CREATE INDEX timeline_items_wedding ON timeline_items (wedding_id, starts_at);

CREATE TABLE checkins (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL,
    wedding_id   bigint NOT NULL,
    supplier_id  bigint NOT NULL,
    status       text NOT NULL CHECK (status IN ('arrived', 'late', 'no_show')),
    note         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (wedding_id, supplier_id) REFERENCES wedding_suppliers (wedding_id, supplier_id)
);
CREATE INDEX checkins_wedding ON checkins (wedding_id, created_at);

CREATE TABLE messages (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    wedding_id  bigint NOT NULL,
    sender      text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, wedding_id) REFERENCES weddings (tenant_id, id)
);
CREATE INDEX messages_wedding ON messages (wedding_id, created_at);

CREATE TABLE imports (
    id           uuid PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    kind         text NOT NULL,
    format       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('completed', 'failed')),
    row_count    integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX imports_tenant ON imports (tenant_id, created_at);

-- One row per seed run: the guard against seeding the same database twice.
CREATE TABLE seed_runs (
    id          smallint PRIMARY KEY CHECK (id = 1),
    seed        bigint NOT NULL,
    scale       double precision NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
