"""The audience branch's base: subscribers, their editions and consents, suppressions, editions, their segments and
deliveries, as they stood at the end of the single history from before the split (legacy revision 0011).

It depends on no other branch: no audience table refers to a content table. Databases made before the split already
have all of this; `feeds.db.migrate` records this revision on them instead of running it.

Revision ID: newsletter_0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "newsletter_0001"
down_revision = None
branch_labels = ("newsletter",)
depends_on = None


def upgrade() -> None:
    op.create_table('subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consent_method', sa.String(length=16), nullable=False),
    sa.Column('consent_text', sa.Text(), nullable=True),
    sa.Column('consent_ip_hash', sa.String(length=64), nullable=True),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmation_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bounces', sa.Integer(), server_default='0', nullable=False),
    sa.Column('confirmation_nonce', sa.String(length=32), nullable=True),
    sa.Column('ad_consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ad_reconfirm_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribers')),
    sa.UniqueConstraint('email_hash', name=op.f('uq_subscribers_email_hash')),
    sa.UniqueConstraint('public_id', name=op.f('uq_subscribers_public_id'))
    )
    op.create_index(op.f('ix_subscribers_status'), 'subscribers', ['status'], unique=False)
    op.create_table('subscriber_editions',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('edition', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_subscriber_editions_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id', 'edition', name=op.f('pk_subscriber_editions'))
    )
    op.create_index(op.f('ix_subscriber_editions_edition'), 'subscriber_editions', ['edition'], unique=False)
    op.create_table('consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_consents_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents'))
    )
    op.create_index(op.f('ix_consents_subscriber_id'), 'consents', ['subscriber_id'], unique=False)
    op.create_table('suppressions',
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('email_hash', name=op.f('pk_suppressions'))
    )
    op.create_table('editions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editions')),
    sa.UniqueConstraint('name', 'scheduled_at', name=op.f('uq_editions_name_scheduled_at'))
    )
    op.create_table('edition_segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('articles', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_edition_segments_edition_id_editions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_edition_segments')),
    sa.UniqueConstraint('edition_id', 'key', name=op.f('uq_edition_segments_edition_id_key'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('articles', sa.Integer(), nullable=False),
    sa.Column('high_water_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_deliveries_edition_id_editions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['segment_id'], ['edition_segments.id'], name=op.f('fk_deliveries_segment_id_edition_segments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_deliveries_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('edition_id', 'subscriber_id', name=op.f('uq_deliveries_edition_id_subscriber_id'))
    )
    op.create_index(op.f('ix_deliveries_subscriber_id_status'), 'deliveries', ['subscriber_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_deliveries_subscriber_id_status'), table_name='deliveries')
    op.drop_table('deliveries')
    op.drop_table('edition_segments')
    op.drop_table('editions')
    op.drop_table('suppressions')
    op.drop_index(op.f('ix_consents_subscriber_id'), table_name='consents')
    op.drop_table('consents')
    op.drop_index(op.f('ix_subscriber_editions_edition'), table_name='subscriber_editions')
    op.drop_table('subscriber_editions')
    op.drop_index(op.f('ix_subscribers_status'), table_name='subscribers')
    op.drop_table('subscribers')
