"""initial schema: core users and API keys, face recognition, face detection, audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:00:33.413079
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Schemas of this revision; PostgreSQL only (SQLite maps them onto its one database).
SCHEMAS = ("core", "face_recognition", "face_detection", "audit")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for schema in SCHEMAS:
            op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.create_table('ai_operations_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('operation_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('service_name', sa.String(length=50), nullable=False),
    sa.Column('operation_type', sa.String(length=50), nullable=False),
    sa.Column('endpoint', sa.String(length=100), nullable=True),
    sa.Column('request_size_bytes', sa.Integer(), nullable=True),
    sa.Column('response_size_bytes', sa.Integer(), nullable=True),
    sa.Column('processing_time_ms', sa.Integer(), nullable=True),
    sa.Column('operation_result', sa.String(length=20), nullable=True),
    sa.Column('confidence_score', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('error_code', sa.String(length=50), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('ip_address', sa.String(length=45).with_variant(postgresql.INET(), 'postgresql'), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.Column('api_key_id', sa.String(length=50), nullable=True),
    sa.Column('request_source', sa.String(length=50), nullable=True),
    sa.Column('cost_units', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_operations_log')),
    schema='audit'
    )
    op.create_index('idx_ai_operations_log_created_at', 'ai_operations_log', ['created_at'], unique=False, schema='audit')
    op.create_index('idx_ai_operations_log_operation', 'ai_operations_log', ['operation_type'], unique=False, schema='audit')
    op.create_index('idx_ai_operations_log_service', 'ai_operations_log', ['service_name'], unique=False, schema='audit')
    op.create_index('idx_ai_operations_log_user_id', 'ai_operations_log', ['user_id'], unique=False, schema='audit')
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('request_limit', sa.Integer(), nullable=True),
    sa.Column('requests_made', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    schema='core'
    )
    op.create_index('idx_api_keys_key_hash', 'api_keys', ['key_hash'], unique=False, schema='core')
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('face_id', sa.Uuid(), nullable=True),
    sa.Column('privacy_settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('consent_given', sa.Boolean(), nullable=False),
    sa.Column('consent_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('user_id', name=op.f('uq_users_user_id')),
    schema='core'
    )
    op.create_index('idx_users_created_at', 'users', ['created_at'], unique=False, schema='core')
    op.create_index('idx_users_face_id', 'users', ['face_id'], unique=False, schema='core')
    op.create_table('detection_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('image_hash', sa.String(length=64), nullable=True),
    sa.Column('image_url', sa.Text(), nullable=True),
    sa.Column('image_metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('min_face_size', sa.Integer(), nullable=False),
    sa.Column('max_faces', sa.Integer(), nullable=False),
    sa.Column('detection_confidence', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=False),
    sa.Column('return_landmarks', sa.Boolean(), nullable=False),
    sa.Column('return_attributes', sa.Boolean(), nullable=False),
    sa.Column('faces_detected', sa.Integer(), nullable=False),
    sa.Column('processing_time_ms', sa.Integer(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('request_source', sa.String(length=50), nullable=True),
    sa.Column('ip_address', sa.String(length=45).with_variant(postgresql.INET(), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['core.users.user_id'], name=op.f('fk_detection_requests_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detection_requests')),
    sa.UniqueConstraint('request_id', name=op.f('uq_detection_requests_request_id')),
    schema='face_detection'
    )
    op.create_index('idx_detection_requests_created_at', 'detection_requests', ['created_at'], unique=False, schema='face_detection')
    op.create_index('idx_detection_requests_status', 'detection_requests', ['status'], unique=False, schema='face_detection')
    op.create_index('idx_detection_requests_user_id', 'detection_requests', ['user_id'], unique=False, schema='face_detection')
    op.create_table('face_data',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('face_id', sa.String(length=64), nullable=False),
    sa.Column('image_hash', sa.String(length=64), nullable=True),
    sa.Column('face_quality_score', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('face_landmarks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('face_attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('embedding_version', sa.String(length=64), nullable=False),
    sa.Column('embedding_dimension', sa.Integer(), nullable=False),
    sa.Column('milvus_collection', sa.String(length=100), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=False),
    sa.Column('registration_source', sa.String(length=50), nullable=True),
    sa.Column('registration_device_info', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ip_address', sa.String(length=45).with_variant(postgresql.INET(), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('verification_count', sa.Integer(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['core.users.user_id'], name=op.f('fk_face_data_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_data')),
    sa.UniqueConstraint('face_id', name=op.f('uq_face_data_face_id')),
    schema='face_recognition'
    )
    op.create_index('idx_face_data_created_at', 'face_data', ['created_at'], unique=False, schema='face_recognition')
    op.create_index('idx_face_data_status', 'face_data', ['status'], unique=False, schema='face_recognition')
    op.create_index('idx_face_data_user_id', 'face_data', ['user_id'], unique=False, schema='face_recognition')
    op.create_table('face_groups',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('group_name', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('face_count', sa.Integer(), nullable=False),
    sa.Column('privacy_level', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['core.users.user_id'], name=op.f('fk_face_groups_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_groups')),
    schema='face_recognition'
    )
    op.create_table('detected_faces',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('detection_request_id', sa.Uuid(), nullable=False),
    sa.Column('face_index', sa.Integer(), nullable=False),
    sa.Column('bbox_x', sa.Integer(), nullable=False),
    sa.Column('bbox_y', sa.Integer(), nullable=False),
    sa.Column('bbox_width', sa.Integer(), nullable=False),
    sa.Column('bbox_height', sa.Integer(), nullable=False),
    sa.Column('detection_confidence', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=False),
    sa.Column('face_quality_score', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('landmarks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('estimated_age', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('estimated_gender', sa.String(length=10), nullable=True),
    sa.Column('gender_confidence', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('emotions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('recognized_user_id', sa.Uuid(), nullable=True),
    sa.Column('recognition_confidence', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['detection_request_id'], ['face_detection.detection_requests.id'], name=op.f('fk_detected_faces_detection_request_id_detection_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recognized_user_id'], ['core.users.user_id'], name=op.f('fk_detected_faces_recognized_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detected_faces')),
    schema='face_detection'
    )
    op.create_index('idx_detected_faces_recognized_user', 'detected_faces', ['recognized_user_id'], unique=False, schema='face_detection')
    op.create_index('idx_detected_faces_request_id', 'detected_faces', ['detection_request_id'], unique=False, schema='face_detection')
    op.create_table('face_group_members',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('group_id', sa.Uuid(), nullable=False),
    sa.Column('face_id', sa.Uuid(), nullable=False),
    sa.Column('added_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by'], ['core.users.user_id'], name=op.f('fk_face_group_members_added_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['face_id'], ['face_recognition.face_data.id'], name=op.f('fk_face_group_members_face_id_face_data'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['face_recognition.face_groups.id'], name=op.f('fk_face_group_members_group_id_face_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_face_group_members')),
    sa.UniqueConstraint('group_id', 'face_id', name=op.f('uq_face_group_members_group_id_face_id')),
    schema='face_recognition'
    )
    op.create_table('recognition_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('operation_type', sa.String(length=20), nullable=False),
    sa.Column('input_image_hash', sa.String(length=64), nullable=True),
    sa.Column('matched_face_id', sa.Uuid(), nullable=True),
    sa.Column('confidence_score', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('similarity_score', sa.Numeric(precision=5, scale=4, asdecimal=False), nullable=True),
    sa.Column('recognition_result', sa.String(length=20), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('processing_time_ms', sa.Integer(), nullable=True),
    sa.Column('preprocessing_steps', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('request_source', sa.String(length=50), nullable=True),
    sa.Column('device_info', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ip_address', sa.String(length=45).with_variant(postgresql.INET(), 'postgresql'), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['matched_face_id'], ['face_recognition.face_data.id'], name=op.f('fk_recognition_sessions_matched_face_id_face_data'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['core.users.user_id'], name=op.f('fk_recognition_sessions_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition_sessions')),
    schema='face_recognition'
    )
    op.create_index('idx_recognition_sessions_created_at', 'recognition_sessions', ['created_at'], unique=False, schema='face_recognition')
    op.create_index('idx_recognition_sessions_operation', 'recognition_sessions', ['operation_type'], unique=False, schema='face_recognition')
    op.create_index('idx_recognition_sessions_session_id', 'recognition_sessions', ['session_id'], unique=False, schema='face_recognition')
    op.create_index('idx_recognition_sessions_user_id', 'recognition_sessions', ['user_id'], unique=False, schema='face_recognition')


def downgrade() -> None:
    op.drop_index('idx_recognition_sessions_user_id', table_name='recognition_sessions', schema='face_recognition')
    op.drop_index('idx_recognition_sessions_session_id', table_name='recognition_sessions', schema='face_recognition')
    op.drop_index('idx_recognition_sessions_operation', table_name='recognition_sessions', schema='face_recognition')
    op.drop_index('idx_recognition_sessions_created_at', table_name='recognition_sessions', schema='face_recognition')
    op.drop_table('recognition_sessions', schema='face_recognition')
    op.drop_table('face_group_members', schema='face_recognition')
    op.drop_index('idx_detected_faces_request_id', table_name='detected_faces', schema='face_detection')
    op.drop_index('idx_detected_faces_recognized_user', table_name='detected_faces', schema='face_detection')
    op.drop_table('detected_faces', schema='face_detection')
    op.drop_table('face_groups', schema='face_recognition')
    op.drop_index('idx_face_data_user_id', table_name='face_data', schema='face_recognition')
    op.drop_index('idx_face_data_status', table_name='face_data', schema='face_recognition')
    op.drop_index('idx_face_data_created_at', table_name='face_data', schema='face_recognition')
    op.drop_table('face_data', schema='face_recognition')
    op.drop_index('idx_detection_requests_user_id', table_name='detection_requests', schema='face_detection')
    op.drop_index('idx_detection_requests_status', table_name='detection_requests', schema='face_detection')
    op.drop_index('idx_detection_requests_created_at', table_name='detection_requests', schema='face_detection')
    op.drop_table('detection_requests', schema='face_detection')
    op.drop_index('idx_users_face_id', table_name='users', schema='core')
    op.drop_index('idx_users_created_at', table_name='users', schema='core')
    op.drop_table('users', schema='core')
    op.drop_index('idx_api_keys_key_hash', table_name='api_keys', schema='core')
    op.drop_table('api_keys', schema='core')
    op.drop_index('idx_ai_operations_log_user_id', table_name='ai_operations_log', schema='audit')
    op.drop_index('idx_ai_operations_log_service', table_name='ai_operations_log', schema='audit')
    op.drop_index('idx_ai_operations_log_operation', table_name='ai_operations_log', schema='audit')
    op.drop_index('idx_ai_operations_log_created_at', table_name='ai_operations_log', schema='audit')
    op.drop_table('ai_operations_log', schema='audit')
    if op.get_bind().dialect.name == "postgresql":
        for schema in reversed(SCHEMAS):
            op.execute(f"DROP SCHEMA IF EXISTS {schema}")
